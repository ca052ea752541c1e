"""VGG (Simonyan & Zisserman 2015): stacks of 3x3 convs and 2x2 max-pools, then an MLP head.

`depth` picks a column of the paper's Table 1: 11 ('A'), 13 ('B'), 16 ('D') or 19 ('E').
`width_multiplier` scales every conv's channels (rounded, at least 1), so tests can use tiny
VGGs. The classifier is flatten → [Dense(hidden) → ReLU → dropout] x 2 → Dense(out); the paper's
hidden size is 4096 for 224x224 inputs, the default here is 512, the usual choice for small ones.

Small inputs: the five max-pools would take a 32x32 image to 1x1, and 8x8 digits or 28x28 MNIST
(28→14→7→3→1) to nothing. A pool therefore only halves the spatial dims that are still at least
2 and is skipped once they are all 1, so every depth runs on any input of at least 1x1 (on 8x8
digits the last two pools are skipped, on 28x28 the last one). Odd sizes are floored (7 → 3).

`batch_norm=True` (the default, for trainability on small datasets) adds BatchNorm after every
conv, whose bias then becomes redundant and is dropped; `batch_norm=False` is the paper's network.
Conv kernels use He initialisation (fan-out), which VGG without BatchNorm needs to train from
scratch. Inputs are [B, H, W, C] images or [B, L] signals (a channel axis is added; 1-D convs).
"""
import functools
from typing import Any, Sequence

import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.errors import UserError
from research.models import checks
from research.models.context import Context, with_channels

# Conv channels per layer, 'M' for a 2x2 max-pool (Table 1 of the paper).
CONFIGS = {
    11: (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'),
    13: (64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'),
    16: (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'),
    19: (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M',
         512, 512, 512, 512, 'M'),
}


def scaled(channels: int, multiplier: float) -> int:
  return max(1, int(round(channels * multiplier)))


class Model(nn.Module):
  """A VGG classifier; `layers` is a CONFIGS entry."""
  num_outputs: int
  layers: Sequence[int | str] = CONFIGS[11]
  width_multiplier: float = 1.0
  batch_norm: bool = True
  hidden: int = 512
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    x = with_channels(inputs, self.dtype)
    nd = x.ndim - 2
    conv = functools.partial(
        nn.Conv, kernel_size=(3,) * nd, padding='SAME', use_bias=not self.batch_norm,
        dtype=self.dtype, kernel_init=nn.initializers.variance_scaling(2.0, 'fan_out', 'normal'))
    for layer in self.layers:
      if layer == 'M':
        window = tuple(2 if size >= 2 else 1 for size in x.shape[1:-1])
        if max(window) > 1:  # Skipped once every spatial dim is 1; see the module docstring.
          x = nn.max_pool(x, window, strides=window)
        continue
      x = conv(scaled(layer, self.width_multiplier))(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, axis_name=self.bn_axis_name,
                         momentum=0.9, dtype=self.dtype)(x)
      x = nn.relu(x)
    x = x.reshape((x.shape[0], -1))
    for _ in range(2):
      x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype)(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_outputs, dtype=self.dtype)(x).astype(jnp.float32)


def validate(cfg: ml_collections.ConfigDict) -> None:
  checks.table_choice('depth', cfg.depth, CONFIGS)
  multiplier = cfg.width_multiplier
  if (not isinstance(multiplier, (int, float)) or isinstance(multiplier, bool)
      or not multiplier > 0):
    raise UserError(f"config.model.width_multiplier must be a positive number, got "
                    f"{multiplier!r}")
  checks.positive_int('hidden', cfg.hidden)
  if not isinstance(cfg.batch_norm, bool):
    raise UserError(f"config.model.batch_norm must be true or false, got {cfg.batch_norm!r}")
  checks.dropout_rate(cfg.dropout_rate)


def from_config(cfg: ml_collections.ConfigDict, ctx: Context) -> Model:
  layers = CONFIGS[checks.table_key(cfg.depth, CONFIGS)]
  return Model(num_outputs=ctx.num_outputs, layers=layers,
               width_multiplier=float(cfg.width_multiplier),
               batch_norm=cfg.batch_norm, hidden=cfg.hidden,
               dropout_rate=cfg.dropout_rate, dtype=ctx.dtype,
               bn_axis_name=ctx.axis_name)

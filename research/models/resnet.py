"""ResNet v1.5 (He et al. 2016, with the stride of a bottleneck block in its 3x3 convolution).

Depths 18 and 34 use basic blocks (two 3x3 convs), 50 uses bottleneck blocks (1x1 → 3x3 → 1x1
with 4x expansion); 'tiny' is two stages of one basic block each, for tests (default width 8).
Stages have `width * (1, 2, 4, 8)` channels and all but the first start with stride 2; a block
whose shape changes gets a projection shortcut (1x1 conv + BatchNorm), the others an identity.

Every conv is followed by BatchNorm (so convs have no bias). The last BatchNorm of each residual
branch has its scale initialised to zero (Goyal et al. 2017, "Accurate, Large Minibatch SGD"): at
initialisation every block is then the identity (or its projection), which makes deep ResNets
train stably from the first step with large learning rates.

`small_inputs=True` (the default) uses the CIFAR-style stem: one 3x3 stride-1 conv and no max-pool,
so 8x8, 28x28 and 32x32 inputs keep their resolution into the first stage; with 10 classes on
32x32x3 inputs ResNet-18 then has 11,173,962 parameters. `small_inputs=False` is the ImageNet stem
(7x7 stride-2 conv and 3x3 stride-2 max-pool). Convolutions have as many spatial dims as the
input, so [B, L] signals (a channel axis is added) get a 1-D ResNet.
"""
import functools
from typing import Any, Sequence

import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.errors import UserError
from research.models import checks, remat as remat_lib
from research.models.context import Context, with_channels

# depth → (block kind, blocks per stage).
STAGES = {
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    'tiny': ('basic', (1, 1)),
}
DEFAULT_WIDTH = {'tiny': 8}  # Every other depth: 64.


class _Block(nn.Module):
  """One residual block: conv branch + (identity or projection) shortcut, then ReLU."""
  features: int
  strides: int
  bottleneck: bool
  dtype: Any
  bn_axis_name: str | None

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    nd = x.ndim - 2
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             axis_name=self.bn_axis_name, dtype=self.dtype)
    strides = (self.strides,) * nd
    if self.bottleneck:
      out_features = 4 * self.features
      y = nn.relu(norm()(conv(self.features, (1,) * nd)(x)))
      y = nn.relu(norm()(conv(self.features, (3,) * nd, strides)(y)))  # v1.5: stride here.
      y = norm(scale_init=nn.initializers.zeros)(conv(out_features, (1,) * nd)(y))
    else:
      out_features = self.features
      y = nn.relu(norm()(conv(self.features, (3,) * nd, strides)(x)))
      y = norm(scale_init=nn.initializers.zeros)(conv(self.features, (3,) * nd)(y))
    if self.strides != 1 or x.shape[-1] != out_features:
      x = norm()(conv(out_features, (1,) * nd, strides)(x))
    return nn.relu(x + y)


class Model(nn.Module):
  """A ResNet classifier: stem → residual stages → global average pool → Dense."""
  num_outputs: int
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  bottleneck: bool = False
  width: int = 64
  small_inputs: bool = True
  dtype: Any = jnp.float32
  bn_axis_name: str | None = None
  remat: str = 'none'  # Activation checkpointing per residual block (models/remat.py).

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    x = with_channels(inputs, self.dtype)
    nd = x.ndim - 2
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             axis_name=self.bn_axis_name, dtype=self.dtype)
    if self.small_inputs:
      x = nn.Conv(self.width, (3,) * nd, use_bias=False, dtype=self.dtype)(x)
      x = nn.relu(norm()(x))
    else:
      x = nn.Conv(self.width, (7,) * nd, strides=(2,) * nd, use_bias=False, dtype=self.dtype)(x)
      x = nn.relu(norm()(x))
      x = nn.max_pool(x, (3,) * nd, strides=(2,) * nd, padding='SAME')
    block_cls = remat_lib.wrap(_Block, self.remat, static_argnums=(2,))  # (self, x, train)
    index = 0  # Explicit names keep parameter paths the same with and without remat.
    for stage, num_blocks in enumerate(self.stage_sizes):
      for block in range(num_blocks):
        strides = 2 if stage > 0 and block == 0 else 1
        x = block_cls(self.width * 2**stage, strides, self.bottleneck, self.dtype,
                      self.bn_axis_name, name=f'_Block_{index}')(x, train)
        index += 1
    x = x.mean(axis=tuple(range(1, 1 + nd)))
    return nn.Dense(self.num_outputs, dtype=self.dtype)(x).astype(jnp.float32)


def validate(cfg: ml_collections.ConfigDict) -> None:
  checks.table_choice('depth', cfg.depth, STAGES)
  width = cfg.width
  if width is not None:
    checks.positive_int('width', width)
  remat_lib.validate(cfg.remat)
  small = cfg.small_inputs
  if not isinstance(small, bool):
    raise UserError(f"config.model.small_inputs must be true or false, got {small!r}")


def from_config(cfg: ml_collections.ConfigDict, ctx: Context) -> Model:
  depth = checks.table_key(cfg.depth, STAGES)
  kind, stage_sizes = STAGES[depth]
  width = cfg.width or DEFAULT_WIDTH.get(depth, 64)
  return Model(num_outputs=ctx.num_outputs, stage_sizes=stage_sizes,
               bottleneck=kind == 'bottleneck', width=width,
               small_inputs=cfg.small_inputs, dtype=ctx.dtype,
               bn_axis_name=ctx.axis_name, remat=cfg.remat)

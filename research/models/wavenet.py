"""A WaveNet-style waveform classifier (van den Oord et al. 2016, used as an encoder).

input causal conv → `num_blocks` × `layers_per_block` gated residual layers → sum of skips → ReLU →
1x1 conv → ReLU → pool over time (mean, max, or the last frame) → Dense. Layer i of every block is a causal conv of width
`kernel_size` and dilation 2^i whose output is split into a filter and a gate, combined as
tanh(filter) · sigmoid(gate), then projected by two 1x1 convs: one added back to the residual
stream, one to the skip sum. The last layer has no residual projection (nothing reads it).

Causality is by explicit left padding of (kernel_size - 1) · dilation, so the features at time t
depend on inputs at times ≤ t only; `return_features=True` returns them before pooling.

`downsample` > 1 makes the input conv strided, for long waveforms: it has width
kernel_size · downsample and stride downsample, and is left-padded by width - stride so that frame
j covers samples up to (j + 1) · downsample - 1 — the end of its own stride window — and every
sample is seen. Each frame then stands for `downsample` samples, and a trailing partial window is
dropped. The receptive field of one output frame, in samples, is
  downsample · (kernel_size + (kernel_size - 1) · num_blocks · (2^layers_per_block - 1)),
i.e. 128 samples for the defaults and 512 with downsample=4 (half of a 1,024-sample clip).
"""
from typing import Any

import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.errors import UserError, unknown
from research.models import checks
from research.models.context import Context, with_channels

POOLS = ('mean', 'max', 'last')


class Model(nn.Module):
  """WaveNet trunk with a pooled linear head; inputs [B, L] or [B, L, C]."""
  num_outputs: int
  channels: int = 32
  skip_channels: int = 32
  kernel_size: int = 2
  num_blocks: int = 2
  layers_per_block: int = 6
  pool: str = 'mean'
  downsample: int = 1
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  def _causal_conv(self, x, features, width, dilation=1, stride=1, name=None):
    """Conv1D whose output at frame j sees inputs up to j·stride + stride - 1 only."""
    pad = (width - 1) * dilation - (stride - 1)
    x = jnp.pad(x, ((0, 0), (pad, 0), (0, 0)))
    return nn.Conv(features, (width,), strides=(stride,), kernel_dilation=(dilation,),
                   padding='VALID', dtype=self.dtype, param_dtype=jnp.float32, name=name)(x)

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, train: bool = False,
               return_features: bool = False) -> jnp.ndarray:
    x = with_channels(inputs, self.dtype)
    x = self._causal_conv(x, self.channels, self.kernel_size * self.downsample,
                          stride=self.downsample, name='input_conv')
    skips = 0.0
    num_layers = self.num_blocks * self.layers_per_block
    for index in range(num_layers):
      block, layer = divmod(index, self.layers_per_block)
      name = f'block{block}_layer{layer}'
      h = self._causal_conv(x, 2 * self.channels, self.kernel_size, dilation=2 ** layer,
                            name=f'{name}_dilated')
      filt, gate = jnp.split(h, 2, axis=-1)
      h = jnp.tanh(filt) * nn.sigmoid(gate)
      skips = skips + nn.Conv(self.skip_channels, (1,), dtype=self.dtype,
                              param_dtype=jnp.float32, name=f'{name}_skip')(h)
      if index < num_layers - 1:
        x = x + nn.Conv(self.channels, (1,), dtype=self.dtype, param_dtype=jnp.float32,
                        name=f'{name}_residual')(h)
    h = nn.relu(skips)
    h = nn.relu(nn.Conv(self.skip_channels, (1,), dtype=self.dtype, param_dtype=jnp.float32,
                        name='post_conv')(h))
    if return_features:
      return h.astype(jnp.float32)  # [B, frames, skip_channels], causal in time.
    # 'last': the newest frame, which has seen the whole receptive field up to the end (a
    # forecaster's summary of the window); 'mean' / 'max' pool every frame (a classifier's).
    h = {'mean': lambda: h.mean(axis=1), 'max': lambda: h.max(axis=1),
         'last': lambda: h[:, -1]}[self.pool]()
    h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
    logits = nn.Dense(self.num_outputs, dtype=self.dtype, param_dtype=jnp.float32,
                      name='head')(h)
    return logits.astype(jnp.float32)


_INT_FIELDS = ('channels', 'skip_channels', 'kernel_size', 'num_blocks', 'layers_per_block',
               'downsample')


def validate(cfg: ml_collections.ConfigDict) -> None:
  for field in _INT_FIELDS:
    checks.positive_int(field, cfg[field])
  if cfg.pool not in POOLS:
    raise unknown('config.model.pool', cfg.pool, POOLS)
  checks.dropout_rate(cfg.dropout_rate)


def from_config(cfg: ml_collections.ConfigDict, ctx: Context) -> Model:
  fields = {field: cfg[field] for field in _INT_FIELDS}
  if ctx.input_shape and ctx.input_shape[0] < fields['downsample']:
    raise UserError(f"config.model.downsample={fields['downsample']} is longer than the "
                    f"input ({ctx.input_shape[0]} steps); it must be <= the sequence length")
  return Model(num_outputs=ctx.num_outputs, pool=cfg.pool, dropout_rate=cfg.dropout_rate,
               dtype=ctx.dtype, **fields)

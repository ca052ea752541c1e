"""Small convolutional networks: a LeNet-5-style 2-D CNN, the MNIST-1D paper's 1-D CNN and the
MinAtar paper's Q-network.

- 'lenet': [conv 5 (SAME) → ReLU → max-pool 2]* → Dense 120 → Dense 84 → Dense out, ReLU.
  SAME padding (LeNet-5 itself used VALID on 32x32 inputs) keeps the spatial size a multiple of
  the pooling, so the same network runs on 8x8 digits (8→4→2) and 28x28 MNIST (28→14→7). The
  convolutions have as many spatial dimensions as the input: a 1-D signal gets 1-D convolutions.
- '1d': the ConvBase of Greydanus, "Scaling down deep learning" (MNIST-1D): Conv1D 1→25 (kernel 5),
  25→25 (kernel 3), 25→25 (kernel 3), each stride 2 and padding 1 and followed by ReLU, then
  flatten → Dense. On length-40 signals the lengths are 40→19→10→5, so the linear layer sees
  5 * 25 = 125 features and the network has 150 + 1,900 + 1,900 + 1,260 = 5,210 parameters, as
  the paper's PyTorch model.
- 'minatar': the network of Young & Tian, "MinAtar" (2019) for DQN on 10x10xC frames: Conv 3x3
  (stride 1, VALID) → ReLU → flatten → Dense 128 → ReLU → Dense out; on Breakout's 4 channels
  10→8, 8 * 8 * 16 = 1,024 features, 592 + 131,200 + 129 * out parameters.

Inputs are [B, H, W, C] images or [B, L] signals (a channel axis is added); an example shape of
rank ≥ 2 is read as spatial dims followed by channels.
"""
import itertools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.errors import UserError, unknown
from research.models import checks
from research.models.context import Context, with_channels

VARIANTS = ('lenet', '1d', 'minatar')
DEFAULT_CHANNELS = {'lenet': (6, 16), '1d': (25, 25, 25), 'minatar': (16,)}
LENET_HIDDEN = (120, 84)
MINATAR_HIDDEN = 128


def _channels(variant: str, channels) -> tuple:
  """`channels` as a per-conv tuple: None → the variant's default, an int → every conv layer."""
  if channels is None:
    return DEFAULT_CHANNELS[variant]
  if isinstance(channels, int):
    return (channels,) * len(DEFAULT_CHANNELS[variant])
  return tuple(channels)


def _smallest_size(variant: str, num_convs: int, spatial: Sequence[int]) -> int:
  """The smallest spatial size any conv block produces (< 1 means the input is too small)."""
  sizes, smallest = list(spatial), min(spatial)
  for i in range(num_convs):
    if variant == 'lenet':
      sizes = [s // 2 for s in sizes]  # SAME conv keeps the size; the pool halves it.
    elif variant == 'minatar':
      sizes = [s - 2 for s in sizes]  # 3x3 VALID.
    else:
      kernel = 5 if i == 0 else 3
      sizes = [(s + 2 - kernel) // 2 + 1 for s in sizes]
    smallest = min(smallest, *sizes)
  return smallest


class WindowConv(nn.Module):
  """`nn.Conv(features, kernel_size, strides, padding=[(p, p), ...])` as one matmul over the
  unfolded windows, in any number of spatial dimensions: the same parameters (`kernel`
  [*kernel_size, in, features], `bias`), initializer and outputs up to float rounding
  (tests/test_window_conv.py).

  Why: XLA:CPU runs small convolutions slowly exactly where small runs need them fast: inside a
  loop of steps (the resident data path's loop, a DQN's compiled collection and updates) and
  vmapped over vectorized seeds (a grouped convolution). MNIST-1D's conv in a `fori_loop`: 4.7x
  (benchmarks/conv1d_layouts.py); a MinAtar Q-network's update and action: 171 vs 2.9 ms. A dot
  of [batch, *out_spatial, taps * in] windows, made of one strided slice per kernel tap (whose
  gradients are pads, not scatters), keeps the fast GEMM kernels everywhere.
  """
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] | None = None  # 1 in every dimension.
  padding: Sequence[int] | None = None  # 0 in every dimension; p pads p zeros on both sides.
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    kernel_size = tuple(self.kernel_size)
    strides = tuple(self.strides or (1,) * len(kernel_size))
    padding = tuple(self.padding or (0,) * len(kernel_size))
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (*kernel_size, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    x = jnp.pad(x.astype(self.dtype), ((0, 0), *((p, p) for p in padding), (0, 0)))
    out_sizes = [(size - k) // s + 1 for size, k, s in zip(x.shape[1:-1], kernel_size, strides)]
    taps = []
    for offsets in itertools.product(*(range(k) for k in kernel_size)):  # Row-major, as `kernel`.
      starts = (0, *offsets, 0)
      limits = (x.shape[0], *(o + s * (n - 1) + 1 for o, s, n in zip(offsets, strides, out_sizes)),
                x.shape[-1])
      taps.append(jax.lax.slice(x, starts, limits, (1, *strides, 1)))
    windows = jnp.concatenate(taps, axis=-1)  # [batch, *out_sizes, taps * in], tap-major.
    out = windows @ kernel.reshape(-1, self.features).astype(self.dtype)
    return out + bias.astype(self.dtype)


class Model(nn.Module):
  """A LeNet-style, MNIST-1D-style or MinAtar CNN; see the module docstring."""
  num_outputs: int
  variant: str = 'lenet'
  channels: Sequence[int] | int | None = None
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    x = with_channels(inputs, self.dtype)
    num_spatial = x.ndim - 2
    channels = _channels(self.variant, self.channels)
    if self.variant == '1d' and num_spatial != 1:
      raise UserError(f"cnn variant '1d' needs 1-D signals [batch, length], got inputs of shape "
                      f"{inputs.shape}; use variant 'lenet' for images")
    if self.variant == 'minatar' and num_spatial != 2:
      raise UserError(f"cnn variant 'minatar' needs images [batch, height, width, channels], got "
                      f"inputs of shape {inputs.shape}")
    if _smallest_size(self.variant, len(channels), x.shape[1:-1]) < 1:
      raise UserError(f"cnn input of shape {inputs.shape[1:]} is too small for "
                      f"{len(channels)} conv layers of variant {self.variant!r}")
    for i, width in enumerate(channels):
      if self.variant == 'lenet':
        x = nn.relu(nn.Conv(width, (5,) * num_spatial, padding='SAME', dtype=self.dtype)(x))
        x = nn.max_pool(x, (2,) * num_spatial, strides=(2,) * num_spatial)
      elif self.variant == 'minatar':
        x = nn.relu(WindowConv(width, (3, 3), dtype=self.dtype, name=f'Conv_{i}')(x))
      else:
        kernel = 5 if i == 0 else 3
        x = nn.relu(WindowConv(width, (kernel,), (2,), (1,), dtype=self.dtype,
                                    name=f'Conv_{i}')(x))
    x = x.reshape((x.shape[0], -1))
    if self.variant == 'lenet':
      for width in LENET_HIDDEN:
        x = nn.relu(nn.Dense(width, dtype=self.dtype)(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    elif self.variant == 'minatar':
      x = nn.relu(nn.Dense(MINATAR_HIDDEN, dtype=self.dtype)(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    else:
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.Dense(self.num_outputs, dtype=self.dtype)(x)
    return x.astype(jnp.float32)


def validate(cfg: ml_collections.ConfigDict) -> None:
  variant = cfg.variant
  if variant not in VARIANTS:
    raise unknown('config.model.variant', variant, VARIANTS)
  channels = cfg.channels
  if channels is not None:
    as_tuple = (channels,) if isinstance(channels, int) else channels
    if not (isinstance(as_tuple, (tuple, list)) and as_tuple and all(
        isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in as_tuple)):
      raise UserError(f"config.model.channels must be a positive int or a non-empty sequence of "
                      f"positive ints (one per conv layer), got {channels!r}")
  checks.dropout_rate(cfg.dropout_rate)


def from_config(cfg: ml_collections.ConfigDict, ctx: Context) -> Model:
  variant = cfg.variant
  channels = _channels(variant, cfg.channels)
  shape = tuple(ctx.input_shape)
  spatial = shape if len(shape) == 1 else shape[:-1]
  if variant == '1d' and len(spatial) != 1:
    raise UserError(f"cnn variant '1d' needs 1-D signals (input shape (length,)), but the dataset "
                    f"gives {shape}; use variant 'lenet' for images")
  if variant == 'minatar' and len(shape) != 3:
    raise UserError(f"cnn variant 'minatar' needs images (input shape (height, width, "
                    f"channels)), but the inputs have shape {shape}")
  if spatial and _smallest_size(variant, len(channels), spatial) < 1:
    raise UserError(f"cnn input shape {shape} is too small for {len(channels)} conv layers of "
                    f"variant {variant!r}; use fewer config.model.channels")
  return Model(num_outputs=ctx.num_outputs, variant=variant, channels=channels,
               dropout_rate=cfg.dropout_rate, dtype=ctx.dtype)

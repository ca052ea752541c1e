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


class WindowConv1D(nn.Module):
  """`nn.Conv(features, (kernel,), strides=(2,), padding=((1, 1),))` as one matmul over the
  unfolded windows: the same parameters (`kernel` [kernel, in, features], `bias`), initializer
  and outputs up to float rounding (tests/test_models.py).

  Why: XLA:CPU runs this small convolution slowly where it matters for small runs: inside a
  loop of steps (the resident data path's `fori_loop`, steps_per_dispatch > 1) and vmapped over
  vectorized seeds (a grouped convolution). A dot of [batch, length, kernel * in] windows (made of
  `kernel` strided slices, whose gradients are pads, not scatters) keeps the fast GEMM kernels
  everywhere (benchmarks/conv1d_layouts.py).
  """
  features: int
  kernel: int
  stride: int = 2
  padding: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (self.kernel, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    x = jnp.pad(x.astype(self.dtype), ((0, 0), (self.padding, self.padding), (0, 0)))
    length = (x.shape[1] - self.kernel) // self.stride + 1
    taps = [jax.lax.slice_in_dim(x, t, t + self.stride * (length - 1) + 1, self.stride, axis=1)
            for t in range(self.kernel)]
    windows = jnp.concatenate(taps, axis=-1)  # [batch, length, kernel * in], tap-major.
    out = windows @ kernel.reshape(-1, self.features).astype(self.dtype)
    return out + bias.astype(self.dtype)


class WindowConv2D(nn.Module):
  """`nn.Conv(features, (3, 3), padding='VALID')` as one matmul over the 9 shifted views: the
  same parameters, initializer and outputs up to float rounding (tests/test_window_conv.py).

  Why: a DQN's collection and updates run inside one compiled loop (core/dqn.py), where XLA:CPU
  runs nn.Conv ~50x slower than this dot (171 vs 2.9 ms per update and action on MinAtar frames,
  measured on 2 cores); see WindowConv1D.
  """
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (3, 3, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    height, width = x.shape[1] - 2, x.shape[2] - 2
    x = x.astype(self.dtype)
    windows = jnp.concatenate([x[:, i:i + height, j:j + width] for i in range(3)
                               for j in range(3)], axis=-1)  # [b, h, w, 9 * in], row-major taps.
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
        x = nn.relu(WindowConv2D(width, dtype=self.dtype, name=f'Conv_{i}')(x))
      else:
        kernel = 5 if i == 0 else 3
        x = nn.relu(WindowConv1D(width, kernel, dtype=self.dtype, name=f'Conv_{i}')(x))
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

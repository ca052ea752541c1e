"""Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words").

Non-overlapping patches are embedded by a conv with kernel = stride = `patch_size`, a learned
position embedding is added, and `depth` pre-LayerNorm encoder blocks follow:
  x = x + Dropout(MHA(LN(x)));  x = x + Dropout(Dense(GELU(Dense_mlp_dim(LN(x))))).
A final LayerNorm precedes the head, applied to the class token (`pooling='cls'`, the paper's
choice) or to the mean over patch tokens (`pooling='mean'`). As in the paper the head is
zero-initialised, so every class starts at the same logit.

The image size must be divisible by the patch size in every spatial dim; `from_config` checks it
against the dataset's input shape. [B, L] signals get a channel axis and 1-D patches of length
`patch_size`, so the same model runs on MNIST-1D.
"""
from typing import Any

import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.config import schema
from research.errors import UserError, unknown
from research.models import attention, checks
from research.models.context import Context, with_channels

POOLINGS = ('cls', 'mean')
DEFAULTS = schema.MODELS['vit']


class _EncoderBlock(nn.Module):
  num_heads: int
  mlp_dim: int
  dropout_rate: float
  dtype: Any

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    y = nn.LayerNorm(dtype=self.dtype)(x)
    # The softmax runs in float32 even under bfloat16: its normalisation loses the most precision.
    y = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, dtype=self.dtype, force_fp32_for_softmax=True,
        attention_fn=attention.fused)(y, y, deterministic=not train)
    x = x + nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = nn.gelu(nn.Dense(self.mlp_dim, dtype=self.dtype)(y))
    y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    y = nn.Dense(x.shape[-1], dtype=self.dtype)(y)
    return x + nn.Dropout(self.dropout_rate, deterministic=not train)(y)


class Model(nn.Module):
  """A ViT classifier; see the module docstring."""
  num_outputs: int
  patch_size: int = DEFAULTS['patch_size']
  hidden_size: int = DEFAULTS['hidden_size']
  depth: int = DEFAULTS['depth']
  num_heads: int = DEFAULTS['num_heads']
  mlp_dim: int = DEFAULTS['mlp_dim']
  dropout_rate: float = DEFAULTS['dropout_rate']
  pooling: str = DEFAULTS['pooling']
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    x = with_channels(inputs, self.dtype)
    nd = x.ndim - 2
    if any(size % self.patch_size for size in x.shape[1:-1]):
      raise UserError(f"vit patch_size {self.patch_size} does not divide the input's spatial "
                      f"shape {x.shape[1:-1]}")
    patch = (self.patch_size,) * nd
    x = nn.Conv(self.hidden_size, patch, strides=patch, padding='VALID', dtype=self.dtype,
                name='patch_embedding')(x)
    x = x.reshape((x.shape[0], -1, self.hidden_size))
    if self.pooling == 'cls':
      cls = self.param('cls', nn.initializers.zeros, (1, 1, self.hidden_size))
      x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, self.hidden_size)).astype(
          x.dtype), x], axis=1)
    position = self.param('position_embedding', nn.initializers.normal(stddev=0.02),
                          (1, x.shape[1], self.hidden_size))
    x = x + position.astype(x.dtype)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    for _ in range(self.depth):
      x = _EncoderBlock(self.num_heads, self.mlp_dim, self.dropout_rate, self.dtype)(x, train)
    x = nn.LayerNorm(dtype=self.dtype, name='final_norm')(x)
    x = x[:, 0] if self.pooling == 'cls' else x.mean(axis=1)
    x = nn.Dense(self.num_outputs, dtype=self.dtype, kernel_init=nn.initializers.zeros,
                 name='head')(x)
    return x.astype(jnp.float32)


def validate(cfg: ml_collections.ConfigDict) -> None:
  sizes = {field: checks.positive_int(field, cfg[field])
           for field in ('patch_size', 'hidden_size', 'depth', 'num_heads', 'mlp_dim')}
  hidden, heads = sizes['hidden_size'], sizes['num_heads']
  if hidden % heads:
    raise UserError(f"config.model.num_heads ({heads}) must divide config.model.hidden_size "
                    f"({hidden}); e.g. num_heads in "
                    f"{[h for h in range(1, hidden + 1) if hidden % h == 0][:8]}")
  pooling = cfg.pooling
  if pooling not in POOLINGS:
    raise unknown('config.model.pooling', pooling, POOLINGS)
  checks.dropout_rate(cfg.dropout_rate)


def from_config(cfg: ml_collections.ConfigDict, ctx: Context) -> Model:
  fields = {field: cfg[field] for field in DEFAULTS}
  shape = tuple(ctx.input_shape)
  spatial = shape if len(shape) == 1 else shape[:-1]  # (length,) or (H, W, C).
  if any(size % fields['patch_size'] for size in spatial):
    divisors = sorted({p for p in range(1, max(spatial) + 1)
                       if all(size % p == 0 for size in spatial)})
    raise UserError(f"config.model.patch_size {fields['patch_size']} does not divide the input's "
                    f"spatial shape {spatial}; allowed patch sizes: {divisors}")
  return Model(num_outputs=ctx.num_outputs, dtype=ctx.dtype, **fields)

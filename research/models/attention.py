"""Self-attention for the Transformer families: one fused call, and a key/value cache for decoding.

`fused` is the attention function every family hands to Flax's MultiHeadDotProductAttention: it
calls `jax.nn.dot_product_attention`, which XLA lowers to cuDNN's fused kernel on GPUs (when the
shapes and dtypes allow) and to plain XLA elsewhere. Two cases still take Flax's explicit softmax,
which is the same computation: dropout on the attention probabilities (the fused call has none)
and a request to sow the probabilities (research/explain/attention.py reads them), since a fused
kernel never materializes them.

`CachedSelfAttention` is the decoding path of `research generate`: it keeps every position's keys
and values in the 'cache' collection, so each new token costs one query against the cache, not a
forward pass over the whole buffer. Its parameters are laid out exactly as
MultiHeadDotProductAttention's (query, key, value, out), so a trained model decodes with its own
parameters. Positions are per example, so a batch can mix prompts of different lengths.
"""
import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn


def fused(query, key, value, bias=None, mask=None, broadcast_dropout=True, dropout_rng=None,
          dropout_rate=0.0, deterministic=False, dtype=None, precision=None, module=None,
          force_fp32_for_softmax=False):
  """Flax's `attention_fn` signature (Flax passes only the arguments named here), computed by
  jax.nn.dot_product_attention; q, k, v are [batch, length, heads, head_dim]. The softmax runs
  in float32 either way."""
  if module is not None or (dropout_rate > 0.0 and not deterministic):
    return nn.dot_product_attention(
        query, key, value, bias, mask, broadcast_dropout, dropout_rng, dropout_rate,
        deterministic, dtype, precision, module, force_fp32_for_softmax)
  if mask is not None:
    mask = mask.astype(jnp.bool_)  # Flax's masks are float (1: attend); JAX's are boolean.
  out = jax.nn.dot_product_attention(query, key, value, bias=bias, mask=mask)
  return out if dtype is None else out.astype(dtype)


class CachedSelfAttention(nn.Module):
  """Causal self-attention over cached keys and values, for tokens at given positions.

  The first call (the whole buffer, positions 0..T-1) creates a cache of T positions and fills
  it; each later call writes its tokens' keys and values at their positions and attends to the
  cached positions at or before each query's. Positions past T-1 must not be passed.
  """
  num_heads: int
  hidden_size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, positions: jnp.ndarray) -> jnp.ndarray:
    """x [B, t, d], positions int [B, t] → [B, t, d]."""
    projection = functools.partial(
        nn.DenseGeneral, features=(self.num_heads, self.hidden_size // self.num_heads),
        dtype=self.dtype)
    query, key, value = (projection(name=name)(x) for name in ('query', 'key', 'value'))
    keys = self.variable('cache', 'cached_key', jnp.zeros, key.shape, key.dtype)
    values = self.variable('cache', 'cached_value', jnp.zeros, value.shape, value.dtype)
    rows = jnp.arange(x.shape[0])[:, None]
    keys.value = keys.value.at[rows, positions].set(key)
    values.value = values.value.at[rows, positions].set(value)
    cached_positions = jnp.arange(keys.value.shape[1])
    mask = cached_positions[None, None, None, :] <= positions[:, None, :, None]  # [B, 1, t, T]
    out = jax.nn.dot_product_attention(query, keys.value, values.value, mask=mask)
    return nn.DenseGeneral(self.hidden_size, axis=(-2, -1), dtype=self.dtype,
                           name='out')(out.astype(self.dtype))

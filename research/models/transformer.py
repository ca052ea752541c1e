"""Pieces shared by the Transformer families (bert.py, gpt.py): embedding, pre-LN block, stack.

The blocks are pre-LayerNorm (GPT-2 style): each sub-layer reads LayerNorm(x) and adds its output
to the residual stream x, and the stack ends in one final LayerNorm. Pre-LN trains stably without
the learning-rate warm-up that post-LN (the original BERT) needs, which matters for short runs.

Parameters per block, with d = hidden_size and m = mlp_dim:
  attention  4·d² + 4·d   (query, key, value and output projections, each with a bias)
  MLP        2·d·m + d + m
  LayerNorms 2 · 2·d      (scale and bias, before attention and before the MLP)
and the stack adds a final LayerNorm (2·d). The embedding holds vocab_size·d + max_len·d.
"""
from typing import Any

import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.config import schema
from research.core import tokens as tokens_lib
from research.errors import UserError
from research.models import attention, checks, remat as remat_lib
from research.models.context import Context

# GPT-2 and BERT both initialise embeddings with N(0, 0.02²). With tied output embeddings this
# also makes the initial logits small, so the initial loss is close to log(vocab_size).
EMBED_INIT = nn.initializers.normal(stddev=0.02)

# Defaults of the config fields every Transformer family reads (schema.py states them).
DEFAULTS = schema.MODELS['gpt']


class Embedding(nn.Module):
  """Token embedding plus a learned position embedding, then dropout.

  `attend` reuses the token table as an output projection (weight tying), hence setup() rather
  than a single compact method.
  """
  vocab_size: int
  hidden_size: int
  max_len: int
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  def setup(self):
    self.token = nn.Embed(self.vocab_size, self.hidden_size, dtype=self.dtype,
                          embedding_init=EMBED_INIT)
    self.position = self.param('position', EMBED_INIT, (self.max_len, self.hidden_size))
    self.dropout = nn.Dropout(self.dropout_rate)

  def __call__(self, tokens: jnp.ndarray, train: bool = False,
               positions: jnp.ndarray | None = None) -> jnp.ndarray:
    """`positions` (int, tokens' shape): where each token sits; None: 0, 1, ... per row."""
    length = tokens.shape[-1]
    if length > self.max_len:
      raise ValueError(f"sequence length {length} exceeds max_len {self.max_len}")
    if positions is None:
      x = self.token(tokens) + self.position[:length].astype(self.dtype)
    else:
      x = self.token(tokens) + jnp.take(self.position, positions, axis=0).astype(self.dtype)
    return self.dropout(x, deterministic=not train)

  def attend(self, x: jnp.ndarray) -> jnp.ndarray:
    """Logits x · Eᵀ against every token embedding (the tied output layer)."""
    return self.token.attend(x)


class Block(nn.Module):
  """x + Attention(LN(x)), then x + MLP(LN(x)); dropout on each sub-layer's output.

  The attention probabilities get the same dropout rate, as in BERT and GPT-2. With `decode`,
  attention is causal over a key/value cache (attention.py) and `positions` says where x's
  tokens sit; `mask` is then unused.
  """
  hidden_size: int
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32
  decode: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, mask: jnp.ndarray | None, train: bool = False,
               positions: jnp.ndarray | None = None):
    h = nn.LayerNorm(dtype=self.dtype, name='ln_attention')(x)
    if self.decode:
      h = attention.CachedSelfAttention(self.num_heads, self.hidden_size, self.dtype,
                                        name='attention')(h, positions)
    else:
      h = nn.MultiHeadDotProductAttention(
          num_heads=self.num_heads, qkv_features=self.hidden_size,
          out_features=self.hidden_size, dropout_rate=self.dropout_rate, dtype=self.dtype,
          force_fp32_for_softmax=True, attention_fn=attention.fused,
          name='attention')(h, mask=mask, deterministic=not train)
    x = x + nn.Dropout(self.dropout_rate)(h, deterministic=not train)
    h = nn.LayerNorm(dtype=self.dtype, name='ln_mlp')(x)
    h = nn.gelu(nn.Dense(self.mlp_dim, dtype=self.dtype, name='mlp_in')(h))
    h = nn.Dense(self.hidden_size, dtype=self.dtype, name='mlp_out')(h)
    return x + nn.Dropout(self.dropout_rate)(h, deterministic=not train)


class Stack(nn.Module):
  """`num_layers` blocks sharing one attention mask, then the final LayerNorm; each block is
  rematerialized under policy `remat` (models/remat.py)."""
  num_layers: int
  hidden_size: int
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32
  remat: str = 'none'
  decode: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, mask: jnp.ndarray | None, train: bool = False,
               positions: jnp.ndarray | None = None):
    # (self, x, mask, train, positions): `train` is a Python bool.
    block = remat_lib.wrap(Block, self.remat, static_argnums=(3,))
    for i in range(self.num_layers):
      x = block(self.hidden_size, self.num_heads, self.mlp_dim, self.dropout_rate, self.dtype,
                self.decode, name=f'block_{i}')(x, mask, train, positions)
    return nn.LayerNorm(dtype=self.dtype, name='ln_final')(x)


class Trunk(nn.Module, kw_only=True):
  """The fields every Transformer family shares, and its embedding + block stack.

  A family subclasses it, adds its own fields, and calls `encode` from its compact `__call__`;
  the sub-modules are named 'embed' and `stack_name`, so parameter paths stay per family.
  """
  vocab_size: int = tokens_lib.VOCAB_SIZE
  num_layers: int = DEFAULTS['num_layers']
  hidden_size: int = DEFAULTS['hidden_size']
  num_heads: int = DEFAULTS['num_heads']
  mlp_dim: int = 4 * DEFAULTS['hidden_size']
  dropout_rate: float = DEFAULTS['dropout_rate']
  max_len: int = 128
  tie_embeddings: bool = True
  remat: str = DEFAULTS['remat']  # Activation checkpointing per block (remat.py).
  dtype: Any = jnp.float32
  decode: bool = False  # Causal attention over a key/value cache (GPT's generation).

  def encode(self, tokens: jnp.ndarray, mask: jnp.ndarray | None, train: bool,
             stack_name: str, positions: jnp.ndarray | None = None
             ) -> tuple[Embedding, jnp.ndarray]:
    """(the embedding, for a tied output layer; the final hidden states [B, T, d])."""
    embed = Embedding(self.vocab_size, self.hidden_size, self.max_len, self.dropout_rate,
                      self.dtype, name='embed')
    x = Stack(self.num_layers, self.hidden_size, self.num_heads, self.mlp_dim,
              self.dropout_rate, self.dtype, self.remat, self.decode, name=stack_name)(
                  embed(tokens, train, positions), mask, train, positions)
    return embed, x


def padding_mask(tokens: jnp.ndarray) -> jnp.ndarray:
  """[B, 1, T, T] mask letting every query attend to the non-PAD keys only.

  Queries are not masked: a PAD position's output is never used, and leaving its row unmasked
  keeps it from being a fully masked (degenerate) softmax row.
  """
  keys = tokens != tokens_lib.PAD
  return nn.make_attention_mask(jnp.ones_like(keys), keys)


def validate_common(cfg: ml_collections.ConfigDict) -> None:
  """Checks the fields every Transformer family reads; raises UserError naming the bad one."""
  checks.positive_int('num_layers', cfg.num_layers)
  hidden = checks.positive_int('hidden_size', cfg.hidden_size)
  heads = checks.positive_int('num_heads', cfg.num_heads)
  if hidden % heads:
    raise UserError(f"config.model.hidden_size ({hidden}) must be divisible by "
                    f"config.model.num_heads ({heads})")
  checks.positive_int('mlp_dim', mlp_dim(cfg))
  if cfg.max_len is not None:
    checks.positive_int('max_len', cfg.max_len)
  checks.positive_int('vocab_size', cfg.vocab_size, minimum=2)
  checks.dropout_rate(cfg.dropout_rate)
  remat_lib.validate(cfg.remat)
  if not isinstance(cfg.tie_embeddings, bool):
    raise UserError(f"config.model.tie_embeddings must be true or false, "
                    f"got {cfg.tie_embeddings!r}")


def mlp_dim(cfg: ml_collections.ConfigDict) -> int:
  """`mlp_dim`, or 4 * hidden_size where it is None (the schema's default)."""
  return 4 * cfg.hidden_size if cfg.mlp_dim is None else cfg.mlp_dim


def common_fields(cfg: ml_collections.ConfigDict, ctx: Context) -> dict:
  """The shared constructor fields, with defaults filled in from the config and the context."""
  if len(ctx.input_shape) != 1:
    raise UserError(f"Transformer models read token sequences of shape (seq_len,), but the "
                    f"dataset's examples have shape {tuple(ctx.input_shape)}")
  seq_len = ctx.input_shape[0]
  max_len = seq_len if cfg.max_len is None else cfg.max_len
  if max_len < seq_len:
    raise UserError(f"config.model.max_len ({max_len}) is shorter than the dataset's "
                    f"sequences ({seq_len})")
  return dict(
      vocab_size=cfg.vocab_size, num_layers=cfg.num_layers, hidden_size=cfg.hidden_size,
      num_heads=cfg.num_heads, mlp_dim=mlp_dim(cfg), dropout_rate=float(cfg.dropout_rate),
      max_len=max_len, tie_embeddings=cfg.tie_embeddings, remat=cfg.remat, dtype=ctx.dtype)

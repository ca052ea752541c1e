"""BERT-style encoder: bidirectional self-attention over the non-PAD tokens, two heads.

head='mlm': per-token logits [B, T, vocab_size] for masked-token pre-training (the runner hides
  ~15% of the non-PAD tokens behind MASK and scores only those positions). As in BERT, the head is
  Dense(d) → GELU → LayerNorm, then the output layer. By default (`tie_embeddings=True`) the
  output layer is the transposed token embedding plus a per-token bias: it saves vocab_size·d
  parameters and, with byte tokens that each occur rarely, lets every input occurrence of a token
  also train its output row. With tie_embeddings=False it is its own Dense(vocab_size).
head='classify': logits [B, num_outputs] from a pooled final hidden state through BERT's pooler
  (Dense(d) → tanh), dropout and a Dense classifier. Byte-level inputs carry no [CLS] token, so
  the default `pool='mean'` averages the final states of the non-PAD tokens; `pool='first'` takes
  the first token's state instead, as BERT does with [CLS].

Only PAD keys are masked, so the outputs at real tokens do not depend on how much padding follows.

Parameters beyond the shared embedding and stack (see transformer.py), d = hidden_size,
V = vocab_size, C = num_outputs:
  mlm, tied     d² + d + 2·d + V
  mlm, untied   d² + d + 2·d + V·d + V
  classify      d² + d + d·C + C
"""

import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.core import tokens as tokens_lib
from research.errors import UserError, unknown
from research.models import transformer
from research.models.context import Context

HEADS = ('mlm', 'classify')
POOLS = ('mean', 'first')


class Model(transformer.Trunk, kw_only=True):
  """Encoder + head; tokens [B, T] int32 → float32 logits ([B, T, V] or [B, num_outputs])."""
  num_outputs: int
  head: str = 'mlm'
  pool: str = 'mean'

  @nn.compact
  def __call__(self, tokens: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    embed, x = self.encode(tokens, transformer.padding_mask(tokens), train, 'encoder')
    if self.head == 'mlm':
      return self._mlm(embed, x).astype(jnp.float32)
    return self._classify(tokens, x, train).astype(jnp.float32)

  def _mlm(self, embed: transformer.Embedding, x: jnp.ndarray) -> jnp.ndarray:
    x = nn.gelu(nn.Dense(self.hidden_size, dtype=self.dtype, name='mlm_transform')(x))
    x = nn.LayerNorm(dtype=self.dtype, name='mlm_ln')(x)
    if not self.tie_embeddings:
      return nn.Dense(self.vocab_size, dtype=self.dtype, name='mlm_output')(x)
    bias = self.param('mlm_bias', nn.initializers.zeros_init(), (self.vocab_size,))
    return embed.attend(x) + bias.astype(self.dtype)

  def _classify(self, tokens: jnp.ndarray, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    if self.pool == 'first':
      pooled = x[:, 0]
    else:
      real = (tokens != tokens_lib.PAD)[..., None].astype(jnp.float32)  # Sum in float32.
      pooled = jnp.sum(x * real, axis=1) / jnp.maximum(jnp.sum(real, axis=1), 1.0)
    pooled = jnp.tanh(nn.Dense(self.hidden_size, dtype=self.dtype, name='pooler')(pooled))
    pooled = nn.Dropout(self.dropout_rate)(pooled, deterministic=not train)
    return nn.Dense(self.num_outputs, dtype=self.dtype, name='classifier')(pooled)


def validate(cfg: ml_collections.ConfigDict) -> None:
  transformer.validate_common(cfg)
  if cfg.head not in HEADS:
    raise unknown('config.model.head', cfg.head, HEADS)
  if cfg.pool not in POOLS:
    raise unknown('config.model.pool', cfg.pool, POOLS)


def from_config(cfg: ml_collections.ConfigDict, ctx: Context) -> Model:
  fields = transformer.common_fields(cfg, ctx)
  head = cfg.head
  if head == 'mlm' and ctx.num_outputs != fields['vocab_size']:
    raise UserError(f"config.model.head='mlm' predicts tokens, so the task's {ctx.num_outputs} "
                    f"outputs must equal config.model.vocab_size ({fields['vocab_size']})")
  return Model(num_outputs=ctx.num_outputs, head=head,
               pool=cfg.pool, **fields)

"""GPT-style decoder-only language model: causal self-attention, next-token logits.

logits[:, t] is the model's distribution over tokens[:, t + 1]; shifting the targets and weighting
out PAD targets is the runner's job. Sequences are right-padded, so a real token never has a PAD
to its left and the causal mask alone is enough: no padding mask is added. That is deliberate, not
an omission: a combined causal + key-padding mask would leave a leading PAD position with no key
at all, and Flax's masked softmax then spreads that row uniformly over *every* position, future
ones included, which would break causality there.

The output layer is the transposed token embedding when `tie_embeddings` (default True, as in
GPT-2), else a bias-free Dense(vocab_size), which adds vocab_size·d parameters. Either way there
is no output bias, so the parameter count beyond transformer.py's embedding and stack is 0 (tied)
or V·d (untied).
"""

import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.errors import UserError
from research.models import transformer
from research.models.context import Context


class Model(transformer.Trunk, kw_only=True):
  """Decoder stack; tokens [B, T] int32 → float32 next-token logits [B, T, vocab_size]."""

  @nn.compact
  def __call__(self, tokens: jnp.ndarray, train: bool = False,
               positions: jnp.ndarray | None = None) -> jnp.ndarray:
    """With `decode` (core/generate.py), `positions` [B, t] places the tokens [B, t] and the
    keys and values of every call are kept in the 'cache' collection: the first call is the
    whole buffer at positions 0..T-1, each later one the next token of each example."""
    if self.decode:
      embed, x = self.encode(tokens, None, train, 'decoder', positions)
    else:
      embed, x = self.encode(tokens, nn.make_causal_mask(tokens), train, 'decoder')
    if self.tie_embeddings:
      logits = embed.attend(x)
    else:
      logits = nn.Dense(self.vocab_size, use_bias=False, dtype=self.dtype, name='output')(x)
    return logits.astype(jnp.float32)


def validate(cfg: ml_collections.ConfigDict) -> None:
  transformer.validate_common(cfg)


def from_config(cfg: ml_collections.ConfigDict, ctx: Context) -> Model:
  fields = transformer.common_fields(cfg, ctx)
  if ctx.num_outputs != fields['vocab_size']:
    raise UserError(f"the GPT model predicts tokens, so the task's {ctx.num_outputs} outputs must "
                    f"equal config.model.vocab_size ({fields['vocab_size']})")
  return Model(**fields)

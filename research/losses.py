"""Loss functions by name. Each maps (logits [B, C], integer labels [B]) → per-example losses [B].

Per-example values (not means) let the caller weight by a mask, so that a padded evaluation batch
and a sharded training batch both average over exactly the real examples.
"""
import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
  """Softmax cross-entropy, −log softmax(logits)[label]."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def mse(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
  """Mean squared error between the raw outputs and one-hot targets, as the seed writes it.

  Averaged over classes: (1/C) Σ_c (y_c − ŷ_c)².
  """
  targets = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
  return jnp.mean(jnp.square(logits - targets), axis=-1)


LOSSES = {
    'cross_entropy': cross_entropy,
    'mse': mse,
}

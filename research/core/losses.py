"""Loss functions by name. Each maps (logits [..., C], integer labels [...]) → losses [...];
the regression losses map (predictions [B, D], real targets [B, D]) → losses [B] (mean over D).
The classification losses also take soft targets, a distribution over the classes [..., C] of
the logits' shape (mixup and cutmix, core/augment.py), in place of integer labels.

Per-example (or per-token) values, not means, let the caller weight by a mask, so that a padded
evaluation batch, a sharded training batch and padded token sequences all average over exactly
the real examples. `label_smoothing` mixes the one-hot target with the uniform distribution.
"""
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from research.errors import UserError, unknown


def _no_smoothing(label_smoothing) -> bool:
  """True for a plain 0; a traced value (one per vmapped member, research/run/vectorized.py) always
  takes the smoothing path, whose arithmetic gives the same loss at 0."""
  return isinstance(label_smoothing, (int, float)) and not label_smoothing


def is_soft(logits: jnp.ndarray, labels: jnp.ndarray) -> bool:
  """Whether `labels` are soft targets (real, one value per class) rather than class ids."""
  return labels.ndim == logits.ndim and jnp.issubdtype(labels.dtype, jnp.floating)


def _targets(logits: jnp.ndarray, labels: jnp.ndarray, label_smoothing: float) -> jnp.ndarray:
  one_hot = (labels.astype(logits.dtype) if is_soft(logits, labels) else
             jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype))
  return one_hot if _no_smoothing(label_smoothing) else optax.smooth_labels(
      one_hot, label_smoothing)


def cross_entropy(logits, labels, label_smoothing: float = 0.0) -> jnp.ndarray:
  """Softmax cross-entropy, −Σ_c y_c log softmax(logits)_c, with optionally smoothed y (soft
  targets as given, or one-hot class labels)."""
  if _no_smoothing(label_smoothing) and not is_soft(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  return optax.softmax_cross_entropy(logits, _targets(logits, labels, label_smoothing))


def mse(logits, labels, label_smoothing: float = 0.0) -> jnp.ndarray:
  """Mean squared error between the raw outputs and one-hot targets, as the seed writes it.

  Averaged over classes: (1/C) Σ_c (y_c − ŷ_c)².
  """
  return jnp.mean(jnp.square(logits - _targets(logits, labels, label_smoothing)), axis=-1)


def sigmoid_binary_cross_entropy(logits, labels, label_smoothing: float = 0.0) -> jnp.ndarray:
  """Independent sigmoid per class against one-hot targets, averaged over classes."""
  return jnp.mean(optax.sigmoid_binary_cross_entropy(
      logits, _targets(logits, labels, label_smoothing)), axis=-1)


LOSSES = {
    'cross_entropy': cross_entropy,
    'mse': mse,
    'sigmoid_binary_cross_entropy': sigmoid_binary_cross_entropy,
}

# Huber's threshold, in the units the regression loss sees: standardized targets (core/tasks.py),
# so 1.0 means one training-split standard deviation whatever the data's own units.
HUBER_DELTA = 1.0


def squared_error(predictions, targets) -> jnp.ndarray:
  """Mean over a target's values of (y − ŷ)²: the seed's MSE for real-valued targets."""
  return jnp.mean(jnp.square(predictions - targets), axis=-1)


def absolute_error(predictions, targets) -> jnp.ndarray:
  """Mean over a target's values of |y − ŷ|: less swayed by outliers than MSE."""
  return jnp.mean(jnp.abs(predictions - targets), axis=-1)


def huber(predictions, targets) -> jnp.ndarray:
  """Quadratic within HUBER_DELTA of the target, linear beyond (optax's Huber loss)."""
  return jnp.mean(optax.huber_loss(predictions, targets, delta=HUBER_DELTA), axis=-1)


REGRESSION_LOSSES = {'mse': squared_error, 'mae': absolute_error, 'huber': huber}


def get(name: str, label_smoothing: float = 0.0, task: str = 'classification') -> Callable:
  """The loss `name` for `task` as fn(logits, labels) -> per-example losses. The regression task
  takes REGRESSION_LOSSES, every other task LOSSES (`mse` is in both: against real targets, or
  against one-hot class targets as the seed writes it)."""
  if task == 'regression':
    if name not in REGRESSION_LOSSES:
      kind = 'a classification loss' if name in LOSSES else 'not a loss'
      raise UserError(f"config.loss={name!r} is {kind}; config.task='regression' allows "
                      f"{', '.join(REGRESSION_LOSSES)}")
    return REGRESSION_LOSSES[name]
  if name not in LOSSES:
    if name in REGRESSION_LOSSES:
      raise UserError(f"config.loss={name!r} is a regression loss; config.task={task!r} "
                      f"allows {', '.join(LOSSES)}")
    raise unknown('config.loss', name, LOSSES)
  if not 0.0 <= label_smoothing < 1.0:
    raise UserError(f"config.label_smoothing must be in [0, 1), got {label_smoothing}")
  return functools.partial(LOSSES[name], label_smoothing=label_smoothing)


def masked_token_cross_entropy(logits, targets, weights) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Token-level cross-entropy summed over positions where `weights` is 1: (sum, count).

  The language-model losses: next-token prediction (weights mark real, non-pad targets) and
  masked-token prediction (weights mark the hidden positions).
  """
  per_token = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  weights = weights.astype(per_token.dtype)
  return (per_token * weights).sum(), weights.sum()

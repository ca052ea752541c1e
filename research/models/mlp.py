"""The seed's multilayer perceptron: flatten → [Dense → activation → dropout]* → Dense.

The seed trains 784-128-64-10 with ReLU; `hidden_sizes` and `activation` make the same module the
subject of the width, depth and activation ablations.
"""
from typing import Any, Callable, Sequence

import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.errors import UserError, unknown
from research.models import checks
from research.models.activations import ACTIVATIONS
from research.models.context import Context


class MLP(nn.Module):
  """A fully connected classifier. Inputs of any shape are flattened per example."""
  hidden_sizes: Sequence[int]
  num_outputs: int
  activation: Callable[[jnp.ndarray], jnp.ndarray] = nn.relu
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    x = inputs.reshape((inputs.shape[0], -1)).astype(self.dtype)
    for width in self.hidden_sizes:
      x = self.activation(nn.Dense(width, dtype=self.dtype)(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_outputs, dtype=self.dtype)(x).astype(jnp.float32)


def validate(cfg: ml_collections.ConfigDict) -> None:
  sizes = cfg.hidden_sizes
  if not all(isinstance(s, int) and s > 0 for s in sizes):
    raise UserError(f"config.model.hidden_sizes must be positive ints, got {sizes!r}")
  if cfg.activation not in ACTIVATIONS:
    raise unknown('config.model.activation', cfg.activation, ACTIVATIONS)
  checks.dropout_rate(cfg.dropout_rate)


def from_config(cfg: ml_collections.ConfigDict, ctx: Context) -> MLP:
  return MLP(hidden_sizes=tuple(cfg.hidden_sizes), num_outputs=ctx.num_outputs,
             activation=ACTIVATIONS[cfg.activation], dropout_rate=cfg.dropout_rate,
             dtype=ctx.dtype)

"""Logistic regression: one Dense layer on the flattened input (the MNIST-1D paper's baseline)."""
from typing import Any

import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from research.models.context import Context


class Linear(nn.Module):
  num_outputs: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    del train  # No dropout or normalization: the same function in both modes.
    x = inputs.reshape((inputs.shape[0], -1)).astype(self.dtype)
    return nn.Dense(self.num_outputs, dtype=self.dtype)(x).astype(jnp.float32)


def validate(cfg: ml_collections.ConfigDict) -> None:
  del cfg  # No hyper-parameters beyond the name.


def from_config(cfg: ml_collections.ConfigDict, ctx: Context) -> Linear:
  del cfg
  return Linear(num_outputs=ctx.num_outputs, dtype=ctx.dtype)

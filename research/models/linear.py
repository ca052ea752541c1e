"""Logistic regression: one Dense layer on the flattened input (the MNIST-1D paper's baseline)."""
import jax.numpy as jnp
import ml_collections
from flax import linen as nn


class Linear(nn.Module):
  num_classes: int

  @nn.compact
  def __call__(self, inputs: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    del train  # No dropout or normalization: the same function in both modes.
    return nn.Dense(self.num_classes)(inputs.reshape((inputs.shape[0], -1)))


def validate(cfg: ml_collections.ConfigDict) -> None:
  del cfg  # No hyper-parameters beyond the name.


def from_config(cfg: ml_collections.ConfigDict, num_classes: int) -> Linear:
  del cfg
  return Linear(num_classes=num_classes)

"""Convolutions as matmuls over unfolded windows (models/cnn.py `WindowConv`), as the MNIST-1D
CNN and the MinAtar Q-network use them: the parameters and outputs of `nn.Conv`, up to float
rounding."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
import pytest

from research.models import cnn


class _ConvReference(nn.Module):
  """The paper's ConvBase as it was written before: flax's own nn.Conv."""

  @nn.compact
  def __call__(self, inputs):
    x = inputs[..., None]
    for kernel in (5, 3, 3):
      x = nn.relu(nn.Conv(25, (kernel,), strides=(2,), padding=((1, 1),))(x))
    return nn.Dense(10)(x.reshape((x.shape[0], -1)))


def test_same_parameters_outputs_and_gradients_as_nn_conv():
  model, reference = cnn.Model(num_outputs=10, variant='1d'), _ConvReference()
  inputs = jax.random.normal(jax.random.PRNGKey(1), (16, 40))
  params = model.init(jax.random.PRNGKey(0), inputs)
  same_init = reference.init(jax.random.PRNGKey(0), inputs)
  # Same names, shapes and initial values: old checkpoints restore, a seed starts where it did.
  jax.tree.map(np.testing.assert_array_equal, params, same_init)
  np.testing.assert_allclose(model.apply(params, inputs), reference.apply(params, inputs),
                             rtol=1e-5, atol=1e-5)
  loss = lambda m: lambda p: jnp.sum(m.apply(p, inputs) ** 2)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               jax.grad(loss(model))(params), jax.grad(loss(reference))(params))


class _MinAtarReference(nn.Module):
  """The MinAtar Q-network written with flax's own nn.Conv."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(16, (3, 3), padding='VALID')(x))
    x = nn.relu(nn.Dense(128)(x.reshape((x.shape[0], -1))))
    return nn.Dense(6)(x)


def test_minatar_network_equals_nn_conv():
  model, reference = cnn.Model(num_outputs=6, variant='minatar'), _MinAtarReference()
  frames = (jax.random.uniform(jax.random.PRNGKey(1), (8, 10, 10, 4)) < 0.2).astype(jnp.float32)
  params = model.init(jax.random.PRNGKey(0), frames)
  jax.tree.map(np.testing.assert_array_equal, params, reference.init(jax.random.PRNGKey(0), frames))
  np.testing.assert_allclose(model.apply(params, frames), reference.apply(params, frames),
                             rtol=1e-5, atol=1e-5)
  loss = lambda m: lambda p: jnp.sum(m.apply(p, frames) ** 2)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               jax.grad(loss(model))(params), jax.grad(loss(reference))(params))
  assert sum(x.size for x in jax.tree.leaves(params)) == 592 + 131_200 + 129 * 6


@pytest.mark.parametrize('kernel_size,strides,padding,shape', [
    ((3,), (1,), (0,), (4, 11, 3)), ((4,), (3,), (2,), (4, 17, 2)),
    ((2, 3), (2, 1), (1, 0), (3, 9, 7, 2)), ((3, 2, 2), (1, 2, 2), (1, 1, 0), (2, 5, 6, 7, 3))])
def test_any_kernel_stride_padding_and_rank_equals_nn_conv(kernel_size, strides, padding, shape):
  window = cnn.WindowConv(5, kernel_size, strides, padding)
  conv = nn.Conv(5, kernel_size, strides, padding=[(p, p) for p in padding])
  x = jax.random.normal(jax.random.PRNGKey(1), shape)
  params = window.init(jax.random.PRNGKey(0), x)
  jax.tree.map(np.testing.assert_array_equal, params, conv.init(jax.random.PRNGKey(0), x))
  np.testing.assert_allclose(window.apply(params, x), conv.apply(params, x), rtol=1e-5, atol=1e-5)

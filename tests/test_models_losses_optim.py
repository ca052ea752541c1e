"""Models (shapes, parameter counts, activations), losses against hand-computed values, optax."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from research import models
from research.core import losses, optim
from research.errors import UserError


def _model_cfg(**fields):
  return ml_collections.ConfigDict(
      dict(name='mlp', hidden_sizes=(128, 64), activation='relu', dropout_rate=0.0) | fields)


def _ctx(num_outputs):
  return models.Context(num_outputs=num_outputs, input_shape=())


def _init(model, shape):
  return model.init(jax.random.PRNGKey(0), jnp.zeros(shape), train=False)['params']


def test_seed_mlp_has_784_128_64_10_parameters():
  model = models.build(_model_cfg(), _ctx(10))
  params = _init(model, (2, 28, 28, 1))
  count = sum(x.size for x in jax.tree.leaves(params))
  assert count == (784 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10)
  assert model.apply({'params': params}, jnp.ones((5, 28, 28, 1))).shape == (5, 10)


def test_linear_is_logistic_regression():
  model = models.build(ml_collections.ConfigDict({'name': 'linear'}), _ctx(10))
  params = _init(model, (1, 40))
  assert params['Dense_0']['kernel'].shape == (40, 10)
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 40))
  expected = x @ params['Dense_0']['kernel'] + params['Dense_0']['bias']
  np.testing.assert_allclose(model.apply({'params': params}, x), expected, rtol=1e-6)


@pytest.mark.parametrize('name, fn', [('relu', jax.nn.relu), ('sigmoid', jax.nn.sigmoid),
                                      ('tanh', jnp.tanh), ('gelu', jax.nn.gelu)])
def test_activation_is_applied_between_layers(name, fn):
  model = models.build(_model_cfg(hidden_sizes=(7,), activation=name), _ctx(3))
  params = _init(model, (1, 5))
  x = jax.random.normal(jax.random.PRNGKey(2), (4, 5))
  hidden = fn(x @ params['Dense_0']['kernel'] + params['Dense_0']['bias'])
  expected = hidden @ params['Dense_1']['kernel'] + params['Dense_1']['bias']
  np.testing.assert_allclose(model.apply({'params': params}, x), expected, rtol=1e-5, atol=1e-6)


def test_dropout_only_in_training():
  model = models.build(_model_cfg(hidden_sizes=(256,), dropout_rate=0.5), _ctx(4))
  params = _init(model, (1, 16))
  x = jnp.ones((2, 16))
  eval_out = model.apply({'params': params}, x, train=False)
  np.testing.assert_array_equal(eval_out, model.apply({'params': params}, x, train=False))
  a = model.apply({'params': params}, x, train=True, rngs={'dropout': jax.random.PRNGKey(0)})
  b = model.apply({'params': params}, x, train=True, rngs={'dropout': jax.random.PRNGKey(1)})
  assert not np.allclose(a, b) and not np.allclose(a, eval_out)


def test_unknown_model_lists_the_registry():
  allowed = 'bert, cnn, deepspeech, gpt, gru, linear, mlp, resnet, vgg, vit, wavenet'
  with pytest.raises(UserError, match=f"unknown model 'mpl' \\(did you mean 'mlp'\\?\\); allowed: {allowed}"):
    models.validate(_model_cfg(name='mpl'))


def test_cross_entropy_matches_hand_computation():
  logits = jnp.array([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]])
  labels = jnp.array([0, 2])
  first = -np.log(np.exp(2.0) / (np.exp(2.0) + np.exp(1.0) + np.exp(0.1)))
  np.testing.assert_allclose(losses.cross_entropy(logits, labels), [first, np.log(3.0)],
                             rtol=1e-6)


def test_mse_uses_one_hot_targets_averaged_over_classes():
  outputs = jnp.array([[0.5, 0.2, 0.1], [1.0, 0.0, 0.0]])
  labels = jnp.array([1, 0])
  first = ((0.5 - 0) ** 2 + (0.2 - 1) ** 2 + (0.1 - 0) ** 2) / 3
  np.testing.assert_allclose(losses.mse(outputs, labels), [first, 0.0], rtol=1e-6, atol=1e-7)


def _opt_cfg(**fields):
  base = dict(name='sgd', learning_rate=0.1, momentum=0.0, nesterov=False, b1=0.9, b2=0.999,
              weight_decay=0.0, schedule='constant', warmup_steps=0, grad_clip_norm=0.0)
  return ml_collections.ConfigDict(base | fields)


def _one_update(cfg, grads, params, total_steps=10):
  tx = optim.create(cfg, total_steps)
  updates, _ = tx.update(grads, tx.init(params), params)
  return optax.apply_updates(params, updates)


def test_sgd_step_is_minus_lr_times_gradient():
  params, grads = {'w': jnp.array([1.0, 2.0])}, {'w': jnp.array([0.5, -1.0])}
  np.testing.assert_allclose(_one_update(_opt_cfg(), grads, params)['w'], [0.95, 2.1], rtol=1e-6)


def test_weight_decay_and_clipping():
  params, grads = {'w': jnp.array([1.0, 2.0])}, {'w': jnp.array([3.0, 4.0])}
  clipped = _one_update(_opt_cfg(grad_clip_norm=1.0), grads, params)['w']
  np.testing.assert_allclose(clipped, [1.0 - 0.1 * 0.6, 2.0 - 0.1 * 0.8], rtol=1e-6)
  decayed = _one_update(_opt_cfg(weight_decay=0.5), {'w': jnp.zeros(2)}, params)['w']
  np.testing.assert_allclose(decayed, [1.0 - 0.1 * 0.5, 2.0 - 0.1 * 1.0], rtol=1e-6)


@pytest.mark.parametrize('name', ['sgd', 'adam', 'adamw'])
def test_every_optimizer_descends_a_quadratic(name):
  cfg = _opt_cfg(name=name, momentum=0.9, nesterov=True, weight_decay=1e-4)
  tx = optim.create(cfg, 100)
  params = {'w': jnp.array([3.0, -2.0])}
  state = tx.init(params)
  for _ in range(50):
    grads = jax.grad(lambda p: jnp.sum(p['w'] ** 2))(params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  assert float(jnp.sum(params['w'] ** 2)) < 0.5 * 13.0


def test_schedules():
  cosine = optim.schedule(_opt_cfg(schedule='cosine'), total_steps=100)
  assert float(cosine(0)) == pytest.approx(0.1) and float(cosine(100)) == pytest.approx(0.0)
  warm = optim.schedule(_opt_cfg(schedule='warmup_cosine', warmup_steps=10), total_steps=100)
  assert float(warm(0)) == 0.0 and float(warm(10)) == pytest.approx(0.1)
  assert float(warm(5)) == pytest.approx(0.05)
  assert float(optim.schedule(_opt_cfg(), 100)(77)) == pytest.approx(0.1)

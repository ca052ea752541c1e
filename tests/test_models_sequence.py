"""Sequence models (GRU, WaveNet): parameter formulas, direction, dtype, learning, validation."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import linen as nn

from research import models
from research.errors import UserError
from research.models import gru, wavenet
from research.models.context import Context


def _build(family, num_outputs=10, length=40, dtype=jnp.float32, **fields):
  cfg = models.complete(ml_collections.ConfigDict(
      dict(name=family.__name__.rsplit('.', 1)[-1]) | fields))  # The schema's defaults.
  family.validate(cfg)
  return family.from_config(cfg, Context(num_outputs=num_outputs, input_shape=(length,),
                                         dtype=dtype))


def _param_shapes(model, input_shape):
  """The parameters' shapes and dtypes, without computing them."""
  return jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros(input_shape))['params']


def _random_params(model, input_shape=(2, 40), seed=0):
  """Random float32 parameters with the model's structure, scaled like 1/sqrt(fan-in).

  Causality, direction and dtype hold for any parameters. Random ones skip compiling each
  config's initializers (truncated normals, orthogonal), which would dominate these tests' time.
  """
  rng = np.random.default_rng(seed)

  def fill(leaf):
    fan_in = np.prod(leaf.shape[:-1]) if len(leaf.shape) > 1 else 100
    return jnp.asarray(rng.normal(size=leaf.shape) / np.sqrt(fan_in), jnp.float32)
  return jax.tree.map(fill, _param_shapes(model, input_shape))


def _count(params):
  return sum(x.size for x in jax.tree.leaves(params))


def _gru_direction(h, inputs):
  """flax GRUCell: input Dense r, z, n with bias; recurrent Dense r, z without, n with bias."""
  return 3 * (h * inputs + h) + 3 * h * h + h


@pytest.mark.parametrize('bidirectional, readout, layers', [
    (True, 'all', 1), (False, 'all', 1), (True, 'last', 1), (True, 'all', 2), (False, 'last', 3)])
def test_gru_parameter_count(bidirectional, readout, layers):
  h, length, classes, dirs = 6, 40, 10, 2 if bidirectional else 1
  model = _build(gru, hidden_size=h, bidirectional=bidirectional, readout=readout,
                 num_layers=layers)
  params = _param_shapes(model, (2, length))
  recurrent = dirs * (_gru_direction(h, 1) + (layers - 1) * _gru_direction(h, dirs * h))
  features = dirs * h * (length if readout == 'all' else 1)
  assert _count(params) == recurrent + features * classes + classes
  if (bidirectional, readout, layers) == (True, 'all', 1):  # The MNIST-1D paper's GRU.
    assert _count(params) == 5110  # PyTorch's nn.GRU: 5,134 (24 redundant r/z biases).


def test_gru_directions():
  """Forward states at t see inputs ≤ t only; backward ones see the future; outputs differ."""
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 40))
  x_changed = x.at[:, 30].add(1.0)
  outputs = {}
  for bidirectional in (True, False):
    model = _build(gru, bidirectional=bidirectional)
    variables = {'params': _random_params(model)}
    layer = 'Bidirectional_0' if bidirectional else 'RNN_0'
    capture = lambda mdl, _: isinstance(mdl, (nn.RNN, nn.Bidirectional))
    apply = jax.jit(lambda v: model.apply(variables, v, capture_intermediates=capture))
    (logits, state), (_, changed) = apply(x), apply(x_changed)
    states = [s['intermediates'][layer]['__call__'][0][1]  # The layer's outputs, [B, L, dirs·h].
              for s in (state, changed)]
    np.testing.assert_array_equal(states[0][:, :30, :6], states[1][:, :30, :6])
    assert not np.allclose(states[0][:, 30:, :6], states[1][:, 30:, :6])
    if bidirectional:
      assert not np.allclose(states[0][:, :30, 6:], states[1][:, :30, 6:])
    outputs[bidirectional] = logits
  assert outputs[True].shape == outputs[False].shape == (2, 10)
  assert not np.allclose(outputs[True], outputs[False])


def test_gru_pytorch_init_draws_every_weight_from_its_uniform_bound():
  """weight_init='pytorch' (the MNIST-1D paper's model): nn.GRU's U(-1/sqrt(h), 1/sqrt(h)) in the
  cells and nn.Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) in the readout, biases too."""
  params = _build(gru, weight_init='pytorch').init(jax.random.PRNGKey(0), jnp.zeros((1, 40)))
  params = params['params']
  cells = jax.tree_util.tree_leaves({k: v for k, v in params.items() if k != 'readout'})
  assert len(cells) == 2 * 10  # Per direction: kernels and biases of ir, iz, in, hn; hr, hz kernels.
  for leaves, bound in ((cells, 6 ** -0.5), (list(params['readout'].values()), 480 ** -0.5)):
    assert all(np.abs(w).max() <= bound and np.asarray(w).std() > 0 for w in leaves)
    # Uniform on [-bound, bound] has standard deviation bound / sqrt(3).
    pooled = np.concatenate([np.ravel(w) for w in leaves])
    np.testing.assert_allclose(pooled.std(), bound / 3 ** 0.5, rtol=0.1)
  flax_readout = _build(gru).init(jax.random.PRNGKey(0), jnp.zeros((1, 40)))['params']['readout']
  assert not np.any(flax_readout['bias'])  # The flax default keeps its zero bias.


def _wavenet_fields(**fields):
  return dict(channels=8, skip_channels=12, kernel_size=3, num_blocks=2,
              layers_per_block=3) | fields


def test_wavenet_parameter_count():
  c, s, k, blocks, per_block, classes = 8, 12, 3, 2, 3, 6
  for downsample in (1, 4):
    model = _build(wavenet, num_outputs=classes, length=64,
                   **_wavenet_fields(downsample=downsample))
    params = _param_shapes(model, (2, 64))
    layers = blocks * per_block
    expected = (
        (k * downsample) * 1 * c + c  # Causal (strided) input conv, one input channel.
        + layers * (k * c * 2 * c + 2 * c)  # Dilated conv to filter and gate.
        + layers * (c * s + s)  # 1x1 skip convs.
        + (layers - 1) * (c * c + c)  # 1x1 residual convs; the last layer has none.
        + (s * s + s)  # 1x1 post conv.
        + (s * classes + classes))  # Dense head.
    assert _count(params) == expected
  defaults = _build(wavenet, num_outputs=6, length=1024)
  assert _count(_param_shapes(defaults, (1, 1024))) == 75558


@pytest.mark.parametrize('downsample', [1, 2])
def test_wavenet_is_causal(downsample):
  fields = _wavenet_fields(downsample=downsample)
  model = _build(wavenet, **fields)
  variables = {'params': _random_params(model)}
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 40, 1))
  features = jax.jit(lambda v: model.apply(variables, v, return_features=True))
  base = features(x)
  assert base.shape == (2, 40 // downsample, 12)
  for t in (0, 17, 30, 39):
    changed = features(x.at[:, t].add(1.0))
    frame = t // downsample  # The first frame whose window holds sample t.
    np.testing.assert_array_equal(base[:, :frame], changed[:, :frame])
    assert not np.allclose(base[:, frame], changed[:, frame])


@pytest.mark.parametrize('family, fields', [(gru, {}), (gru, dict(readout='last')),
                                            (wavenet, _wavenet_fields())])
def test_bfloat16_computes_with_float32_params_and_logits(family, fields):
  model = _build(family, dtype=jnp.bfloat16, **fields)
  shapes = _param_shapes(model, (2, 40))
  assert {x.dtype for x in jax.tree.leaves(shapes)} == {jnp.dtype(jnp.float32)}
  params = _random_params(model)
  logits = jax.jit(model.apply)({'params': params}, jnp.ones((3, 40)))
  assert logits.dtype == jnp.float32 and logits.shape == (3, 10)
  assert np.all(np.isfinite(logits))


@pytest.mark.parametrize('family, fields, extra', [(gru, {}, dict(dropout_rate=0.1)),
                                                   (wavenet, _wavenet_fields(), dict(pool='max'))])
def test_learns_which_half_has_the_larger_mean(family, fields, extra):
  """From the model's own initialization; `extra` fields exercise dropout and max pooling."""
  x = jax.random.normal(jax.random.PRNGKey(0), (32, 40))
  y = (x[:, :20].mean(1) > x[:, 20:].mean(1)).astype(jnp.int32)
  model = _build(family, num_outputs=2, **fields, **extra)
  params = jax.jit(model.init)(jax.random.PRNGKey(1), x)['params']
  optimizer = optax.adam(1e-2)

  def loss_fn(params, rng, train):
    rngs = {'dropout': rng} if train else {}
    logits = model.apply({'params': params}, x, train=train, rngs=rngs)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def step(params, opt_state, rng):
    grads = jax.grad(loss_fn)(params, rng, True)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state

  evaluate = jax.jit(lambda params: loss_fn(params, None, False))
  initial = evaluate(params)
  opt_state = optimizer.init(params)
  for i in range(30):
    params, opt_state = step(params, opt_state, jax.random.PRNGKey(i))
  final = evaluate(params)
  assert final < 0.3 * initial, (initial, final)


@pytest.mark.parametrize('family, field, value', [
    (gru, 'hidden_size', 0), (gru, 'hidden_size', -3), (gru, 'num_layers', 0),
    (gru, 'readout', 'first'), (gru, 'bidirectional', 'yes'), (gru, 'dropout_rate', 1.0),
    (gru, 'weight_init', 'torch'),
    (wavenet, 'kernel_size', 0), (wavenet, 'pool', 'median'), (wavenet, 'channels', 0),
    (wavenet, 'layers_per_block', 2.5), (wavenet, 'downsample', 0),
    (wavenet, 'dropout_rate', -0.1)])
def test_validate_rejects(family, field, value):
  cfg = ml_collections.ConfigDict({'name': family.__name__.rsplit('.', 1)[-1], field: value})
  with pytest.raises(UserError, match=field):
    models.validate(cfg)  # The family's defaults for the other fields, then its checks.


def test_wavenet_downsample_longer_than_input_is_a_user_error():
  with pytest.raises(UserError, match='downsample'):
    _build(wavenet, length=40, downsample=64)

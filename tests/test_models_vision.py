"""Vision families (cnn, resnet, vgg, vit): shapes, dtypes, parameter counts, learning, BatchNorm.

Shapes, dtypes and parameter counts are checked abstractly (`jax.eval_shape`, `jax.make_jaxpr`),
which costs no XLA compilation: on a 2-core CPU compiling is what takes the time, so only the
learning, dropout and BatchNorm tests run real computations, on tiny models, and those compile
with XLA's backend optimisations off (`_jit`). That matters most for `init`: LLVM spends seconds
per layer optimising the random-number code of the initialisers, which then runs only once.
"""
import collections
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from research import models
from research.errors import UserError
from research.models import cnn, resnet, vgg, vit
from research.models.context import Context

# Tiny configurations: (module, fields). Every one runs on all INPUT_SHAPES.
TINY = {
    'lenet': (cnn, dict(variant='lenet')),
    'cnn_1d': (cnn, dict(variant='1d')),
    'resnet': (resnet, dict(depth='tiny')),
    'vgg': (vgg, dict(depth=11, width_multiplier=1 / 16, hidden=32, dropout_rate=0.0)),
    'vit': (vit, dict(patch_size=2, hidden_size=32, depth=2, num_heads=4, mlp_dim=64)),
}
INPUT_SHAPES = [(8, 8, 1), (28, 28, 1), (32, 32, 3), (40,)]
_FAST_COMPILE = {'xla_backend_optimization_level': 0}
_jit = functools.partial(jax.jit, compiler_options=_FAST_COMPILE)


def _build(module, input_shape, num_outputs=10, dtype=jnp.float32, axis_name=None, **fields):
  cfg = models.complete(ml_collections.ConfigDict(
      dict(name=module.__name__.rsplit('.', 1)[-1], **fields)))  # The schema's defaults.
  module.validate(cfg)
  return module.from_config(cfg, Context(num_outputs, tuple(input_shape), dtype, axis_name))


def _abstract_init(model, input_shape):
  return jax.eval_shape(functools.partial(model.init, train=False), jax.random.PRNGKey(0),
                        jax.ShapeDtypeStruct((2, *input_shape), jnp.float32))


def _count(model, input_shape) -> int:
  return sum(x.size for x in jax.tree.leaves(_abstract_init(model, input_shape)['params']))


def _conv_and_matmul_dtypes(model, variables, inputs, train):
  """How many convs and matmuls of each output dtype one application of the model runs."""
  fn = functools.partial(model.apply, train=train, mutable=['batch_stats'],
                         rngs={'dropout': jax.random.PRNGKey(0)})
  dtypes, todo = collections.Counter(), [jax.make_jaxpr(fn)(variables, inputs).jaxpr]
  while todo:
    jaxpr = todo.pop()
    for eqn in jaxpr.eqns:
      if eqn.primitive.name in ('conv_general_dilated', 'dot_general'):
        dtypes[jnp.dtype(eqn.outvars[0].aval.dtype).name] += 1
      for param in eqn.params.values():  # Sub-jaxprs of pjit, remat, cond, custom_vjp, ...
        for sub in param if isinstance(param, (tuple, list)) else (param,):
          sub = getattr(sub, 'jaxpr', sub)  # A ClosedJaxpr's Jaxpr.
          if hasattr(sub, 'eqns'):
            todo.append(sub)
  return dtypes


# --- (a) shapes and dtypes ------------------------------------------------------------------

@pytest.mark.parametrize('family, input_shape', [
    (family, shape) for family in sorted(TINY) for shape in INPUT_SHAPES
    if family != 'cnn_1d' or len(shape) == 1])  # The MNIST-1D CNN takes 1-D signals only.
@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
def test_logits_shape_and_dtype(family, input_shape, dtype):
  module, fields = TINY[family]
  model = _build(module, input_shape, num_outputs=7, dtype=dtype, **fields)
  variables = _abstract_init(model, input_shape)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables))
  inputs = jax.ShapeDtypeStruct((5, *input_shape), jnp.float32)
  for train in (False, True):
    logits, _ = jax.eval_shape(
        functools.partial(model.apply, train=train, mutable=['batch_stats'],
                          rngs={'dropout': jax.random.PRNGKey(0)}), variables, inputs)
    assert logits.shape == (5, 7) and logits.dtype == jnp.float32
  # The computation itself runs in `dtype`, not just the cast logits. The one exception: ViT's
  # attention softmax runs in float32 (force_fp32_for_softmax), and Flax then also multiplies its
  # float32 weights with the values in float32, once per encoder block.
  dtypes = _conv_and_matmul_dtypes(model, variables, inputs, train=True)
  if dtype == jnp.bfloat16 and family == 'vit':
    assert dtypes.pop('float32') == fields['depth']
  assert set(dtypes) == {jnp.dtype(dtype).name}


def test_defaults_build_from_a_config_with_only_the_name():
  for module in (cnn, resnet, vgg, vit):
    model = _build(module, (32, 32, 3))
    logits = jax.eval_shape(model.apply, _abstract_init(model, (32, 32, 3)),
                            jax.ShapeDtypeStruct((3, 32, 32, 3), jnp.float32))
    assert logits.shape == (3, 10)


# --- (b) parameter counts --------------------------------------------------------------------

def _conv(kernel, c_in, c_out, bias=True):
  return kernel * c_in * c_out + (c_out if bias else 0)


def _dense(n_in, n_out):
  return n_in * n_out + n_out


def test_mnist1d_cnn_has_the_papers_5210_parameters():
  expected = _conv(5, 1, 25) + _conv(3, 25, 25) + _conv(3, 25, 25) + _dense(5 * 25, 10)
  assert expected == 150 + 1_900 + 1_900 + 1_260 == 5_210
  assert _count(_build(cnn, (40,), variant='1d'), (40,)) == 5_210


@pytest.mark.parametrize('size, pooled', [(28, 7), (8, 2)])
def test_lenet_parameter_count(size, pooled):
  expected = (_conv(25, 1, 6) + _conv(25, 6, 16) + _dense(pooled * pooled * 16, 120)
              + _dense(120, 84) + _dense(84, 10))
  assert _count(_build(cnn, (size, size, 1), variant='lenet'), (size, size, 1)) == expected
  if size == 28:
    assert expected == 107_786


def _bn(c):
  return 2 * c  # scale and bias; the running statistics are not parameters.


def test_resnet_tiny_parameter_count():
  w = 8  # 'tiny' default width: stages of 8 and 16 channels, one basic block each.
  stem = _conv(9, 1, w, bias=False) + _bn(w)
  block1 = 2 * (_conv(9, w, w, bias=False) + _bn(w))
  block2 = (_conv(9, w, 2 * w, bias=False) + _bn(2 * w) + _conv(9, 2 * w, 2 * w, bias=False)
            + _bn(2 * w) + _conv(1, w, 2 * w, bias=False) + _bn(2 * w))  # + projection.
  expected = stem + block1 + block2 + _dense(2 * w, 10)
  assert _count(_build(resnet, (8, 8, 1), depth='tiny'), (8, 8, 1)) == expected


@pytest.mark.parametrize('depth, small_inputs, shape, classes, expected', [
    (18, True, (32, 32, 3), 10, 11_173_962),  # The CIFAR-style ResNet-18 (3x3 stem).
    ('18', False, (224, 224, 3), 1000, 11_689_512),  # torchvision's ImageNet counts.
    (34, False, (224, 224, 3), 1000, 21_797_672),
    (50, False, (224, 224, 3), 1000, 25_557_032),
])
def test_resnet_known_parameter_counts(depth, small_inputs, shape, classes, expected):
  model = _build(resnet, shape, num_outputs=classes, depth=depth, small_inputs=small_inputs)
  assert _count(model, shape) == expected


VGG_CHANNELS = {
    11: [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
    16: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
}


@pytest.mark.parametrize('depth', [11, 16])
@pytest.mark.parametrize('batch_norm', [False, True])
def test_vgg_parameter_count(depth, batch_norm):
  c_in, expected = 3, 0
  for layer in VGG_CHANNELS[depth]:
    if layer != 'M':
      expected += _conv(9, c_in, layer, bias=not batch_norm) + (_bn(layer) if batch_norm else 0)
      c_in = layer
  expected += _dense(512 * 1 * 1, 512) + _dense(512, 512) + _dense(512, 10)  # 32 → 1 after 5 pools.
  model = _build(vgg, (32, 32, 3), depth=depth, batch_norm=batch_norm)
  assert _count(model, (32, 32, 3)) == expected


@pytest.mark.parametrize('depth, expected', [(11, 132_863_336), (16, 138_357_544)])
def test_vgg_matches_the_papers_imagenet_counts(depth, expected):
  model = _build(vgg, (224, 224, 3), num_outputs=1000, depth=depth, batch_norm=False, hidden=4096)
  assert _count(model, (224, 224, 3)) == expected


def test_vgg_skips_pools_once_spatial_size_is_one():
  # 8x8: four pools take it to 1x1 (8→4→2→1, the fifth skipped); 512/16 = 32 channels remain.
  model = _build(vgg, (8, 8, 1), depth=11, width_multiplier=1 / 16, hidden=32)
  params = _abstract_init(model, (8, 8, 1))['params']
  assert params['Dense_0']['kernel'].shape == (32, 32)
  model = _build(vgg, (28, 28, 1), depth=11, width_multiplier=1 / 16, hidden=32)
  params = _abstract_init(model, (28, 28, 1))['params']  # 28→14→7→3→1.
  assert params['Dense_0']['kernel'].shape == (32, 32)


def _vit_count(image, channels, patch, hidden, depth, mlp, classes, pooling='cls'):
  tokens = (image // patch) ** 2 + (pooling == 'cls')
  block = (2 * hidden  # LayerNorm
           + 4 * _dense(hidden, hidden)  # query, key, value, output projections
           + 2 * hidden  # LayerNorm
           + _dense(hidden, mlp) + _dense(mlp, hidden))
  return (_conv(patch * patch, channels, hidden) + (hidden if pooling == 'cls' else 0)
          + tokens * hidden + depth * block + 2 * hidden + _dense(hidden, classes))


@pytest.mark.parametrize('pooling', ['cls', 'mean'])
def test_vit_parameter_count(pooling):
  model = _build(vit, (28, 28, 1), patch_size=7, hidden_size=48, depth=3, num_heads=6, mlp_dim=96,
                 pooling=pooling)
  assert _count(model, (28, 28, 1)) == _vit_count(28, 1, 7, 48, 3, 96, 10, pooling)


def test_vit_b16_has_86_567_656_parameters():
  model = _build(vit, (224, 224, 3), num_outputs=1000, patch_size=16, hidden_size=768, depth=12,
                 num_heads=12, mlp_dim=3072)
  assert _count(model, (224, 224, 3)) == _vit_count(224, 3, 16, 768, 12, 3072, 1000)
  assert _count(model, (224, 224, 3)) == 86_567_656


# --- (c) every family can overfit one small batch --------------------------------------------

def _toy_batch(input_shape, n=32, classes=10):
  """Each class is a fixed random template plus noise: learnable by any of the families."""
  rng = np.random.default_rng(0)
  templates = rng.normal(size=(classes, *input_shape))
  labels = np.arange(n) % classes
  inputs = templates[labels] + 0.5 * rng.normal(size=(n, *input_shape))
  return inputs.astype(np.float32), labels.astype(np.int32)


@pytest.mark.parametrize('family, input_shape, learning_rate', [
    ('lenet', (8, 8, 1), 3e-3), ('cnn_1d', (40,), 1e-2), ('resnet', (8, 8, 1), 1e-2),
    ('vgg', (8, 8, 1), 3e-3), ('vit', (8, 8, 1), 3e-3)])
def test_overfits_one_small_batch(family, input_shape, learning_rate):
  module, fields = TINY[family]
  model = _build(module, input_shape, **fields)
  inputs, labels = _toy_batch(input_shape)
  variables = _jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), inputs)
  params, state = variables['params'], {k: v for k, v in variables.items() if k != 'params'}
  optimizer = optax.adam(learning_rate)

  @_jit
  def step(params, state, opt_state):
    def loss_fn(params):
      logits, updates = model.apply({'params': params, **state}, inputs, train=True,
                                    mutable=['batch_stats'])
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
      return loss, updates
    (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    new_updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, new_updates), {**state, **updates}, opt_state, loss

  opt_state = _jit(optimizer.init)(params)
  losses = []
  for _ in range(40):
    params, state, opt_state, loss = step(params, state, opt_state)
    losses.append(float(loss))
  assert losses[-1] < 0.3 * losses[0], losses


def test_dropout_only_in_training():
  model = _build(cnn, (40,), variant='1d', dropout_rate=0.5)
  x = np.ones((2, 40), np.float32)
  variables = _jit(model.init)(jax.random.PRNGKey(0), x)
  apply = _jit(model.apply, static_argnames='train')
  eval_out = apply(variables, x, train=False)
  a = apply(variables, x, train=True, rngs={'dropout': jax.random.PRNGKey(0)})
  b = apply(variables, x, train=True, rngs={'dropout': jax.random.PRNGKey(1)})
  assert not np.allclose(a, b) and not np.allclose(a, eval_out)


# --- (d) BatchNorm ---------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny_resnet():
  """A tiny ResNet, its variables (BatchNorm scales made non-zero) and a batch of 32 inputs."""
  model = _build(resnet, (8, 8, 1), depth='tiny')
  inputs = np.random.default_rng(1).normal(size=(32, 8, 8, 1)).astype(np.float32)
  variables = _jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), inputs)
  # The zero-initialised scales would hide the residual branches from the checks below. (NumPy
  # here and below: every eager jax op on a new shape is one more XLA compilation.)
  params = jax.tree.map(lambda p: np.asarray(p) + 0.5, variables['params'])
  return model, {'params': params, 'batch_stats': variables['batch_stats']}, inputs


def test_train_mode_updates_batch_stats_and_eval_mode_uses_them(tiny_resnet):
  model, variables, inputs = tiny_resnet
  apply = _jit(model.apply, static_argnames=('train', 'mutable'))
  _, updates = apply(variables, inputs, train=True, mutable=('batch_stats',))
  for old, new in zip(jax.tree.leaves(variables['batch_stats']),
                      jax.tree.leaves(updates['batch_stats'])):
    assert not np.allclose(old, new)
  # Eval mode writes nothing (an immutable apply would fail if it tried) ...
  eval_full = apply(variables, inputs, train=False)
  # ... and normalises each example with the running averages, independently of its batch;
  eval_part = apply(variables, inputs[:4], train=False)
  np.testing.assert_allclose(np.asarray(eval_full)[:4], eval_part, rtol=1e-5, atol=1e-5)
  # the running averages are what it uses.
  moved = {**variables, 'batch_stats': updates['batch_stats']}
  assert not np.allclose(apply(moved, inputs, train=False), eval_full)


def test_batch_stats_under_pmap_equal_the_full_batch_statistics(tiny_resnet):
  assert jax.device_count() == 8  # tests/conftest.py fakes 8 CPU devices.
  model, variables, inputs = tiny_resnet
  logits, updates = _jit(functools.partial(model.apply, train=True, mutable=['batch_stats']))(
      variables, inputs)

  synced = _build(resnet, (8, 8, 1), depth='tiny', axis_name='batch')
  assert synced.bn_axis_name == 'batch'
  shards = inputs.reshape((8, 4, *inputs.shape[1:]))
  replicated = jax.tree.map(lambda v: np.broadcast_to(v, (8, *np.shape(v))), variables)
  p_apply = jax.pmap(functools.partial(synced.apply, train=True, mutable=['batch_stats']),
                     axis_name='batch').lower(replicated, shards).compile(_FAST_COMPILE)
  p_logits, p_updates = p_apply(replicated, shards)
  np.testing.assert_allclose(np.asarray(p_logits).reshape(logits.shape), logits, rtol=1e-4,
                             atol=1e-5)
  for full, per_device in zip(jax.tree.leaves(updates), jax.tree.leaves(p_updates)):
    for device in range(8):
      np.testing.assert_allclose(np.asarray(per_device)[device], full, rtol=1e-4, atol=1e-6)


# --- (e) validation --------------------------------------------------------------------------

@pytest.mark.parametrize('module, fields, match', [
    (cnn, dict(variant='lenet5'), "did you mean 'lenet'"),
    (cnn, dict(channels=(6, 0)), 'channels'),
    (cnn, dict(dropout_rate=1.0), 'dropout_rate'),
    (resnet, dict(depth=20), 'allowed: 18, 34, 50, tiny'),
    (resnet, dict(depth='huge'), 'depth'),
    (resnet, dict(width=0), 'width'),
    (resnet, dict(small_inputs='yes'), 'small_inputs'),
    (vgg, dict(depth=12), 'allowed: 11, 13, 16, 19'),
    (vgg, dict(width_multiplier=0.0), 'width_multiplier'),
    (vgg, dict(hidden=-1), 'hidden'),
    (vit, dict(hidden_size=32, num_heads=3), 'must divide'),
    (vit, dict(patch_size=0), 'patch_size'),
    (vit, dict(pooling='max'), "unknown config.model.pooling 'max'"),
])
def test_validate_rejects_bad_values(module, fields, match):
  cfg = ml_collections.ConfigDict(dict(name=module.__name__.rsplit('.', 1)[-1], **fields))
  with pytest.raises(UserError, match=match):
    models.validate(cfg)  # The family's defaults for the other fields, then its checks.


def test_from_config_rejects_inputs_the_model_cannot_take():
  with pytest.raises(UserError, match=r'patch_size 3 does not divide .*\(28, 28\).*\[1, 2, 4, 7'):
    _build(vit, (28, 28, 1), patch_size=3)
  with pytest.raises(UserError, match="variant '1d' needs 1-D signals"):
    _build(cnn, (28, 28, 1), variant='1d')
  with pytest.raises(UserError, match='too small'):
    _build(cnn, (8, 8, 1), variant='lenet', channels=(4, 4, 4, 4))

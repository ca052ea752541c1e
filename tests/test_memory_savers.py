"""Memory savers: gradient accumulation equals the big batch, remat leaves the numbers unchanged,
bfloat16 computes in bfloat16 with float32 master weights, and the optimizer state can be
bfloat16."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import config as config_lib
from research.run import parts
from test_sharding import TINY, loss_curve

ONE = ['num_devices=1', 'mesh.data=1', 'mesh.fsdp=1', 'mesh.tensor=1', "sharding='data'"]


def _gpt(*overrides):
  config = config_lib.load('configs/gpt_fsdp.py')
  config_lib.apply_overrides(config, TINY + ONE + list(overrides))
  return config


@pytest.fixture(scope='module')
def reference():
  return loss_curve(_gpt(), num_steps=3)


def _assert_same_run(run, reference, rtol=2e-5):
  (losses, state, exp), (ref_losses, ref_state, _) = run, reference
  np.testing.assert_allclose(losses, ref_losses, rtol=rtol)
  assert losses[-1] < losses[0]
  # Adam turns rounding in ~0 gradients into ~lr moves: compare against the step size.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3),
               exp.devices.to_host(state.params), jax.device_get(ref_state.params))


def test_four_micro_batches_equal_the_big_batch(reference):
  # Token-weighted loss: micro-batches hold different numbers of real tokens, and the
  # accumulated gradient must still be the big batch's weighted mean.
  _assert_same_run(loss_curve(_gpt('grad_accum_steps=4'), num_steps=3), reference)


def test_remat_leaves_the_numbers_unchanged(reference):
  # 'full' is checked on the ResNet below; here the policy that keeps the matmuls.
  _assert_same_run(loss_curve(_gpt("model.remat='dots_saveable'"), num_steps=3), reference)


def test_resnet_blocks_rematerialize_with_the_same_parameters_and_gradients():
  from research.models import resnet
  images = jax.random.normal(jax.random.PRNGKey(1), (4, 8, 8, 1))
  models = {policy: resnet.Model(num_outputs=10, stage_sizes=(1, 1), width=4, remat=policy)
            for policy in ('none', 'full')}
  # One set of variables serves both: remat keeps the parameter paths.
  variables = jax.jit(models['none'].init)(jax.random.PRNGKey(0), images)
  results = {}
  for policy, model in models.items():

    def loss(params, model=model):
      logits, _ = model.apply({'params': params, 'batch_stats': variables['batch_stats']},
                              images, train=True, mutable=['batch_stats'])
      return jnp.sum(logits ** 2)
    results[policy] = (jax.jit(jax.grad(loss))(variables['params']),
                       str(jax.make_jaxpr(jax.grad(loss))(variables['params'])))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               results['none'][0], results['full'][0])
  assert 'remat' in results['full'][1] and 'remat' not in results['none'][1]  # Recomputed.


def test_bfloat16_compute_and_optimizer_state_keep_float32_master_weights(reference):
  losses, state, exp = loss_curve(
      _gpt("dtype='bfloat16'", "optimizer.state_dtype='bfloat16'"), num_steps=3)
  np.testing.assert_allclose(losses, reference[0], rtol=2e-2)  # bfloat16 has an 8-bit mantissa.
  assert losses[-1] < losses[0]
  assert {x.dtype for x in jax.tree.leaves(state.params)} == {jnp.dtype('float32')}
  adam = state.opt_state[1][0]  # chain(clip, adamw): adamw's ScaleByAdamState.
  assert {x.dtype for x in jax.tree.leaves(adam.mu)} == {jnp.dtype('bfloat16')}
  assert {x.dtype for x in jax.tree.leaves(adam.nu)} == {jnp.dtype('float32')}
  tokens = jnp.zeros((2, 15), jnp.int32)
  jaxpr = str(jax.make_jaxpr(lambda p: exp.model.apply({'params': p}, tokens))(state.params))
  assert 'dot_general' in jaxpr and 'bf16[2,15,' in jaxpr  # Matmuls on bfloat16 activations.


def test_bad_memory_settings_are_user_errors():
  from research.errors import UserError
  for overrides, message in [(['grad_accum_steps=3'], r'equal micro-batches'),
                             (["model.remat='some'"], r'config.model.remat'),
                             (["optimizer.state_dtype='float16'"], r'state_dtype')]:
    with pytest.raises(UserError, match=message):
      parts.build(_gpt(*overrides))

"""Sharding by config on 8 fake CPU devices: data, FSDP, tensor and FSDP+tensor give the loss curve
of 1 device; FSDP holds 1/fsdp of the parameters and optimizer state per device; checkpoints move
between shardings; bad meshes and rules are one-line errors."""
import jax
import numpy as np
import pytest

import research
from research import config as config_lib, data
from research.devices import placement, sharding
from research.errors import UserError
from research.run import parts, single_run

STEPS = 3
TINY = ['model.num_layers=1', 'model.hidden_size=32', 'model.num_heads=4', 'model.mlp_dim=64',
        'batch_size=16', 'optimizer.warmup_steps=0', 'optimizer.learning_rate=3e-3']


def _gpt(*overrides):
  config = config_lib.load('configs/gpt_fsdp.py')
  config_lib.apply_overrides(config, TINY + list(overrides))
  return config


def loss_curve(config, num_steps=STEPS):
  """Losses of the first steps through the runner's compiled step; (losses, state, experiment).
  Also used by test_memory_savers.py."""
  exp = parts.build(config)
  state = exp.devices.place_state(exp.init_state())
  steps = single_run.Steps(exp)
  batches = data.train_iterator(exp.config.dataset, exp.process_batch_size, exp.config.seed)
  losses = []
  for _ in range(num_steps):
    state, sums = steps.train(state, exp.devices.shard_batch(next(batches)))
    jax.block_until_ready(sums)
    losses.append(float(sums['loss'][0] / sums['loss'][1]))
  return losses, state, exp


@pytest.fixture(scope='module')
def one_device():
  return loss_curve(_gpt('num_devices=1', 'mesh.data=1', 'mesh.fsdp=1', 'mesh.tensor=1',
                     "sharding='data'"))


@pytest.mark.parametrize('mesh, rules', [
    ((8, 1, 1), 'data'),
    ((1, 8, 1), 'fsdp'),
    ((2, 2, 2), 'fsdp_tensor'),
])
def test_every_sharding_gives_the_1_device_loss_curve(one_device, mesh, rules):
  data_size, fsdp, tensor = mesh
  losses, state, exp = loss_curve(_gpt(f'mesh.data={data_size}', f'mesh.fsdp={fsdp}',
                                   f'mesh.tensor={tensor}', f'sharding={rules!r}'))
  reference, reference_state, _ = one_device
  np.testing.assert_allclose(losses, reference, rtol=2e-5)
  assert losses[-1] < losses[0]  # It trains: equality is not the trivial kind.
  # Adam moves a parameter by ~lr per step whatever its gradient's size, so parameters whose
  # gradients are ~0 can differ by rounding amplified to ~lr: compare against the step size.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3),
               exp.devices.to_host(state.params), jax.device_get(reference_state.params))
  query = state.params['decoder']['block_0']['attention']['query']['kernel']  # [d, heads, hd]
  expected = {'data': (), 'fsdp': ('fsdp',), 'tensor': (None, 'tensor'),
              'fsdp_tensor': ('fsdp', 'tensor')}[rules]
  assert tuple(query.sharding.spec) == expected


def test_fsdp_holds_an_eighth_of_parameters_and_optimizer_state_per_device():
  config = _gpt('mesh.data=1', 'mesh.fsdp=8', 'mesh.tensor=1', "sharding='fsdp'")
  exp = parts.build(config)
  host = exp.init_state()
  replicated = sum(x.nbytes for x in jax.tree.leaves(host.params))
  state = exp.devices.place_state(host)
  for tree in (state.params, state.opt_state):
    held = sharding.bytes_per_device(tree)
    assert len(held) == 8
    whole = sum(np.asarray(x).nbytes for x in jax.tree.leaves(jax.device_get(tree)))
    # Only scalars (Adam's step count) and parameters with no dimension divisible by 8 stay whole.
    assert max(held.values()) <= whole / 8 * 1.02 + 64, (held, whole)
  assert max(sharding.bytes_per_device(state.params).values()) < replicated / 7.5
  mu = state.opt_state[1][0].mu['embed']['token']['embedding']
  assert mu.sharding.spec == state.params['embed']['token']['embedding'].sharding.spec


def test_an_fsdp_checkpoint_resumes_on_1_device_and_back(tmp_path):
  def config(steps, **overrides):
    cfg = config_lib.load('configs/default.py')
    config_lib.apply_overrides(cfg, [f'total_steps={steps}', 'eval_every=4', 'log_every=4']
                               + [f'{k}={v!r}' for k, v in overrides.items()])
    return cfg
  fsdp = dict(num_devices=8, sharding='fsdp', **{'mesh.data': 1, 'mesh.fsdp': 8})
  research.train_and_evaluate(config(4, **fsdp), str(tmp_path))
  saved = research.load_run(str(tmp_path)).params  # Restored on the host: one whole copy.
  summary = research.train_and_evaluate(config(8, num_devices=1), str(tmp_path))
  assert summary['resumed_from_step'] == 4 and summary['devices']['count'] == 1
  summary = research.train_and_evaluate(config(12, **fsdp), str(tmp_path))
  assert summary['resumed_from_step'] == 8 and summary['steps'] == 12
  jax.tree.map(np.testing.assert_array_equal, saved,
               research.load_run(str(tmp_path), step=4).params)


@pytest.mark.parametrize('overrides, message', [
    (['mesh.data=-1', 'mesh.fsdp=3', 'mesh.tensor=1'], r'8 devices do not divide by 3'),
    (['mesh.data=2', 'mesh.fsdp=2', 'mesh.tensor=1'], r'product of the sizes must equal'),
    (['mesh.data=-1', 'mesh.fsdp=-1'], r'at most one axis of size -1'),
    (["sharding='fsdp_tensr'"], r"fsdp_tensor"),
    (["sharding_rules=(('kernel$', ('model', None)),)"], r"mesh axis 'model'"),
    (["sharding_rules=(('[', (None,)),)"], r'not a valid regex'),
    (['mesh.data=1', 'mesh.fsdp=1', 'mesh.tensor=8', "sharding='tensor'"],
     r'cannot be split 8 ways'),
    (["parallel='pmap'", "sharding='fsdp'"], r'data parallelism only'),
])
def test_bad_meshes_and_rules_are_user_errors(overrides, message):
  config = _gpt(*overrides)
  with pytest.raises(UserError, match=message):
    exp = parts.build(config)
    exp.devices.place_state(exp.init_state())


def test_user_rules_come_first_and_are_taken_exactly():
  config = _gpt('mesh.data=1', 'mesh.fsdp=8', 'mesh.tensor=1', "sharding='fsdp'",
                "sharding_rules=(('embed/token/embedding$', (None, None)),)")
  exp = parts.build(config)
  state = exp.devices.place_state(exp.init_state())
  assert state.params['embed']['token']['embedding'].sharding.is_fully_replicated
  assert 'fsdp' in tuple(state.params['embed']['position'].sharding.spec)


def test_a_finished_run_whose_layout_does_not_fit_this_host_reads_back_data_parallel():
  sixteen = _gpt('mesh.data=4', 'mesh.fsdp=4', 'mesh.tensor=1', "sharding='fsdp'")
  fitted = placement.fit_to_host(sixteen)
  assert fitted.mesh.to_dict() == {'data': -1, 'fsdp': 1, 'tensor': 1}
  assert fitted.sharding == 'data' and fitted.num_devices is None
  assert parts.build(fitted).devices.num_devices == 8
  fits = _gpt()
  assert placement.fit_to_host(fits) is fits

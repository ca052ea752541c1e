"""Issue 20: augmentation, EMA, optimizers by name, freezing and per-group learning rates, transfer
from a trained run (init_from), train_fraction and parameter counts."""
import json
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import research
from conftest import assert_usage_error, run_cli
from research import data
from research.data import subsets
from research.config import files
from research.core import augment, losses, optim, steps
from research.errors import UserError
from research.run import parts

AUGMENT = "--config.augment=('crop:pad=1', 'affine', 'noise:std=0.05', 'cutout:size=2', 'mixup')"
RUN = ['--config', 'configs/default.py', '--config.total_steps=40', '--config.eval_every=20',
       '--config.checkpoint_every=10', '--config.log_every=10', '--config.num_devices=1',
       '--config.progress=none', AUGMENT, '--config.ema.decay=0.9']


def _config(**overrides):
  cfg = files.load('configs/default.py')
  cfg.total_steps, cfg.num_devices = 10, 1
  for dotted, value in overrides.items():
    node, *path = dotted.split('__')
    target = cfg
    for part in [node, *path][:-1]:
      target = target[part]
    target[[node, *path][-1]] = value
  return cfg


@pytest.fixture(scope='module')
def digits():
  """A real batch of 32 training digits and the default experiment's parts (no augmentation)."""
  exp = parts.build(_config())
  batch = next(data.eval_batches(exp.data, 'train', 32))
  return exp, {k: v for k, v in batch.items() if k != 'mask'}


def _train(exp, batch, count):
  state = exp.init_state()
  step = jax.jit(lambda s, b: steps.train_step(s, b, task=exp.task, loss_fn=exp.loss_fn))
  history = []
  for _ in range(count):
    state, sums = step(state, batch)
    history.append(state)
  return history


def test_augmentation_is_deterministic_per_step_and_absent_at_evaluation(digits):
  exp, batch = digits
  fn = augment.build(('crop:pad=1', 'flip', 'affine', 'noise', 'cutout', 'mixup', 'cutmix'),
                     exp.info.input_shape, exp.info.input_dtype, 10, 'classification')
  key, fn = jax.random.PRNGKey(3), jax.jit(fn)
  a, b = fn(batch, key), fn(batch, key)
  np.testing.assert_array_equal(a['input'], b['input'])
  np.testing.assert_array_equal(a['soft_label'], b['soft_label'])
  assert not np.allclose(a['input'], fn(batch, jax.random.fold_in(key, 1))['input'])
  assert not np.allclose(a['input'], batch['input'])
  np.testing.assert_allclose(np.asarray(a['soft_label']).sum(-1), 1.0, rtol=1e-5)
  # In a run: the same seed and step give the same augmented step; evaluation ignores it.
  state = exp.init_state().replace(augment=augment.build(
      ('noise',), exp.info.input_shape, exp.info.input_dtype, 10, 'classification'))
  step = jax.jit(lambda s: steps.train_step(s, batch, task=exp.task, loss_fn=exp.loss_fn)[1])
  assert step(state)['loss'] == step(state)['loss']
  assert step(state)['loss'] != step(state.replace(step=state.step + 1))['loss']
  plain = exp.init_state()
  evaluate = lambda s: steps.eval_step(s, dict(batch, mask=np.ones(32, bool)), task=exp.task,
                                       loss_fn=exp.loss_fn)
  assert jax.tree.map(float, evaluate(state)) == jax.tree.map(float, evaluate(plain))


def test_one_dimensional_ops_move_signals_as_stated():
  signal_ = jnp.arange(40, dtype=jnp.float32)
  drawn = [augment._shift(signal_, jax.random.PRNGKey(k), max=4) for k in range(8)]
  moves = {int(signal_[20] - s[20]) for s in drawn}
  assert len(moves) > 2 and all(abs(m) <= 4 for m in moves)
  shifted = next(s for s in drawn if int(signal_[20] - s[20]) != 0)
  moved = int(signal_[20] - shifted[20])
  np.testing.assert_array_equal(shifted[5:35], signal_[5 - moved:35 - moved])
  stretched = augment._scale(signal_, jax.random.PRNGKey(1), max=0.2)
  slope = float(stretched[25] - stretched[15]) / 10
  assert 1 / 1.2 - 1e-5 <= slope <= 1 / 0.8 + 1e-5 and slope != 1.0


def test_soft_targets_go_through_the_losses():
  logits = jax.random.normal(jax.random.PRNGKey(0), (6, 10))
  a, b = jnp.arange(6) % 10, (jnp.arange(6) + 3) % 10
  soft = 0.3 * jax.nn.one_hot(a, 10) + 0.7 * jax.nn.one_hot(b, 10)
  ce = losses.get('cross_entropy')
  np.testing.assert_allclose(ce(logits, soft), 0.3 * ce(logits, a) + 0.7 * ce(logits, b),
                             rtol=1e-5)
  np.testing.assert_allclose(losses.get('mse')(logits, soft),
                             jnp.mean((logits - soft) ** 2, -1), rtol=1e-6)


def test_ema_equals_its_formula(digits):
  exp, batch = digits
  exp = parts.build(_config(ema__decay=0.75), exp.data)
  first = exp.init_state()
  expected = first.params
  for state in _train(exp, batch, 3):
    expected = jax.tree.map(lambda e, p: 0.75 * e + 0.25 * p, expected, state.params)
    for x, y in zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(expected)):
      np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
  assert state.eval_params is state.ema_params
  assert not np.allclose(state.ema_params['Dense_0']['kernel'], state.params['Dense_0']['kernel'])


def test_frozen_parameters_keep_their_bits_and_groups_scale_their_updates(digits):
  exp, batch = digits
  cfg = _config(optimizer__freeze=('Dense_0/',), optimizer__group_lr=('Dense_2/kernel=3.0',),
                optimizer__name='sgd', optimizer__learning_rate=0.1)
  frozen = parts.build(cfg, exp.data)
  first, after = frozen.init_state(), _train(frozen, batch, 5)[-1]
  for name in ('kernel', 'bias'):
    np.testing.assert_array_equal(after.params['Dense_0'][name], first.params['Dense_0'][name])
  assert not np.array_equal(after.params['Dense_1']['kernel'], first.params['Dense_1']['kernel'])
  plain = parts.build(_config(optimizer__name='sgd', optimizer__learning_rate=0.1), exp.data)
  one_frozen, one_plain = _train(frozen, batch, 1)[0], _train(plain, batch, 1)[0]
  delta = lambda s: s.params['Dense_2']['kernel'] - first.params['Dense_2']['kernel']
  np.testing.assert_allclose(delta(one_frozen), 3.0 * delta(one_plain), rtol=1e-4, atol=1e-7)
  with pytest.raises(UserError, match="'Conv_0' matches no parameter"):
    parts.build(_config(optimizer__freeze=('Conv_0',)), exp.data)


@pytest.mark.parametrize('name, args', [('lamb', ()), ('lion', ('b2=0.98',)), ('adafactor', ()),
                                        ('sgd', ('nesterov=True', 'momentum=0.9'))])
def test_any_optax_optimizer_by_name_descends(name, args):
  cfg = optim.validate(_config(optimizer__name=name, optimizer__args=args,
                               optimizer__learning_rate=0.05).optimizer)
  tx = optim.create(cfg, 50)
  params = {'w': jnp.full((4, 4), 2.0)}
  state = tx.init(params)
  loss = lambda p: jnp.sum(p['w'] ** 2)
  for _ in range(20):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, updates)
  assert loss(params) < 0.9 * 64.0


def test_bad_optimizer_and_augmentation_settings_are_one_clear_error(digits):
  exp, _ = digits
  with pytest.raises(UserError, match="'lamb'"):  # did you mean
    optim.validate(_config(optimizer__name='lamm').optimizer)
  with pytest.raises(UserError, match='argument of optax.lion.*b3'):
    optim.validate(_config(optimizer__name='lion', optimizer__args=('b3=0.9',)).optimizer)
  with pytest.raises(UserError, match='does not apply to inputs of shape'):
    parts.build(_config(augment=('shift',)), exp.data)
  with pytest.raises(UserError, match='config.ema.decay'):
    parts.build(_config(ema__decay=1.0), exp.data)
  with pytest.raises(UserError, match='dataset.train_fraction must be a number in'):
    subsets.first_share({'train': 'train'}, {'train': 10}, 1.5)
  resized = parts.build(_config(input_resize=(16, 16)), exp.data)  # 8x8 digits seen as 16x16.
  assert resized.param_counts()['Dense_0'] == 16 * 16 * 128 + 128
  inputs, _ = resized.task.prepare({'input': np.ones((2, 8, 8, 1), np.float32),
                                    'label': np.zeros(2, np.int32)}, jax.random.PRNGKey(0))
  assert inputs.shape == (2, 16, 16, 1)


def _run(workdir, **kill):
  """The run in `workdir`, forked (tests/forkserver.py); `kill` as run_cli's `kill_*`."""
  return run_cli('train', *RUN, '--workdir', str(workdir), devices=1, **kill)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """A short run with augmentation and EMA on: the resume reference and the transfer source."""
  workdir = tmp_path_factory.mktemp('reference')
  result = _run(workdir)
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical_with_augmentation_and_ema(tmp_path, reference):
  killed = tmp_path / 'killed'
  # Killed once step 20's checkpoint appears (checkpoints every 10 steps, written in order).
  proc = _run(killed, kill_when=killed / 'checkpoints' / '20')
  assert proc.returncode == -signal.SIGKILL, 'the run ended before the kill'
  resumed = _run(killed)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  a, b = research.load_run(str(reference)), research.load_run(str(killed))
  leaves = lambda run: jax.tree.leaves((run.state.params, run.state.opt_state,
                                        run.state.ema_params, run.state.rng))
  for x, y in zip(leaves(a), leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert a.params is a.state.ema_params  # Evaluation reads the average.
  read = lambda w: json.loads((w / 'summary.json').read_text())
  assert read(reference)['final'] == read(killed)['final']
  assert read(reference)['param_counts'] == {'Dense_0': 8320, 'Dense_1': 8256, 'Dense_2': 650,
                                             'total': 17226}


@pytest.mark.slow
def test_init_from_loads_matching_paths_and_reinitializes_the_rest(tmp_path, reference):
  target = tmp_path / 'target'
  result = run_cli('train', '--config', 'configs/default.py', '--workdir', str(target),
                   '--config.total_steps=5', '--config.progress=none',
                   "--config.model.hidden_sizes=(128, 32)", f'--config.init_from={reference}',
                   "--config.optimizer.freeze=('Dense_0/',)", '--config.dataset.train_fraction=0.1',
                   '--config.batch_size=32')
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'loaded 3 parameter arrays, re-initialized 3, dropped 0' in result.stderr
  assert 'reinitialized: Dense_1/kernel (shape (128, 64) -> (128, 32))' in result.stderr
  source, run = research.load_run(str(reference)), research.load_run(str(target))
  for name in ('kernel', 'bias'):  # Loaded (the source's raw parameters), then frozen.
    np.testing.assert_array_equal(run.params['Dense_0'][name],
                                  source.state.params['Dense_0'][name])
  assert json.loads((target / 'dataset.json').read_text())['split_sizes']['train'] == 129
  missing = run_cli('train', '--config', 'configs/default.py', '--workdir', str(tmp_path / 'x'),
                    f'--config.init_from={tmp_path / "nowhere"}', '--config.total_steps=5')
  assert_usage_error(missing, 'config.init_from', 'not a research workdir')
  assert not (tmp_path / 'x').exists()


@pytest.mark.slow  # Needs the reference run.
def test_init_from_refuses_unfinished_runs_and_other_families(tmp_path, reference, digits):
  exp, _ = digits
  unfinished = tmp_path / 'unfinished'
  unfinished.mkdir()
  (unfinished / 'config.json').write_text((reference / 'config.json').read_text())
  with pytest.raises(UserError, match='has not finished'):
    parts.build(_config(init_from=str(unfinished)), exp.data)
  with pytest.raises(UserError, match="trained model 'mlp', this one is 'linear'"):
    parts.build(_config(init_from=str(reference), model={'name': 'linear'}), exp.data)
  with pytest.raises(UserError, match='step 7 is not kept'):
    parts.build(_config(init_from=f'{reference}:7'), exp.data)

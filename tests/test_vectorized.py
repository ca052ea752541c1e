"""Vectorized groups (research/run/vectorized.py) equal separate runs, and resume like them.

Tolerance: vmapped steps (vectorize_mode='vmap', the HYPER group) compile to a different XLA
program than a single run's (batched matmuls, fused and reordered reductions), so parameters and
metrics agree to float32 rounding, not bit for bit: rtol 1e-5 / atol 1e-6 on parameters after 30
Adam steps, the same on metrics. Unrolled groups (vectorize_mode='unroll', the SEEDS group) run
each member with a separate run's own step, so they are compared exactly, and so is a group
resumed from its own checkpoint. Every run uses dropout (the dropout keys matter) and a warm-up
cosine schedule (the per-member optimizer must follow it as a separate run does).
"""
import json

import jax
import numpy as np
import pytest

import research
from research import config as config_lib
from research.core import train_state
from research.errors import UserError
from research.run import grouping, vectorized

VMAP_TOLERANCE, EXACT = dict(rtol=1e-5, atol=1e-6), dict(rtol=0, atol=0)
BASE = dict(total_steps=30, eval_every=10, checkpoint_every=30, log_every=5, num_devices=1,
            batch_size=32, eval_batch_size=512, tensorboard=False, progress='none',
            **{'model.hidden_sizes': (32,), 'model.dropout_rate': 0.3,
               'optimizer.schedule': 'warmup_cosine', 'optimizer.warmup_steps': 5})
SEEDS = [dict(seed=s, vectorize_mode='unroll') for s in (0, 1, 2)]
# One seed (one shared data stream), two learning rates, weight decays and label smoothings;
# the first member, SEEDS[0]'s run, has no decay (its optimizer then differs in structure from
# the other's) and no smoothing (a traced 0 takes the smoothing path). Two members, not three,
# to keep the test's cost in budget: each needs a separate run to compare with.
HYPER = [{'seed': 0, 'optimizer.learning_rate': lr, 'optimizer.weight_decay': wd,
          'label_smoothing': smoothing}
         for lr, wd, smoothing in ((1e-3, 0.0, 0.0), (1e-2, 1e-3, 0.2))]


def _config(**overrides):
  config = config_lib.load('configs/default.py')
  config_lib.apply_overrides(config, [f'{k}={v!r}' for k, v in {**BASE, **overrides}.items()])
  return config


def _rows(workdir):
  return [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]


def _assert_close_rows(expected, actual, tolerance):
  assert [(r['step'], r['split']) for r in expected] == [(r['step'], r['split']) for r in actual]
  for a, b in zip(expected, actual):
    assert a.keys() == b.keys()
    np.testing.assert_allclose([a[k] for k in sorted(a) if k != 'split'],
                               [b[k] for k in sorted(b) if k != 'split'], **tolerance)


def _assert_close(a, b, tolerance):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **tolerance), a, b)


def _group(tmp_path, members, name='group', **kwargs):
  configs = [_config(**m) for m in members]
  workdirs = [tmp_path / f'{name}_{k}' for k in range(len(members))]
  summaries = vectorized.train_vectorized(configs, [str(w) for w in workdirs],
                                          str(tmp_path / f'{name}_dir'), **kwargs)
  return workdirs, summaries


@pytest.fixture(scope='module')
def seed_group(tmp_path_factory):
  """The SEEDS group, left to pick its devices: on this 8-device session it takes one."""
  return _group(tmp_path_factory.mktemp('vectorized'), [dict(m, num_devices=None) for m in SEEDS])


@pytest.fixture(scope='module')
def hyper_group(tmp_path_factory):
  return _group(tmp_path_factory.mktemp('vectorized'), HYPER)


@pytest.fixture(scope='module')
def separate(tmp_path_factory):
  """Separate runs by config, each trained once: (workdir, summary)."""
  root, runs = tmp_path_factory.mktemp('separate'), {}

  def run(member):
    config = _config(**{k: v for k, v in member.items() if k != 'vectorize_mode'})
    key = json.dumps(config.to_dict(), sort_keys=True, default=str)
    if key not in runs:
      workdir = root / str(len(runs))
      runs[key] = workdir, research.train_and_evaluate(config, str(workdir))
    return runs[key]
  return run


@pytest.mark.parametrize('members', ['seeds', 'hyper'])
def test_group_equals_separate_runs(request, separate, members):
  group = {'seeds': 'seed_group', 'hyper': 'hyper_group'}[members]
  workdirs, summaries = request.getfixturevalue(group)
  members = {'seeds': SEEDS, 'hyper': HYPER}[members]
  tolerance = EXACT if members is SEEDS else VMAP_TOLERANCE
  finals = []
  for member, workdir, summary in zip(members, workdirs, summaries):
    alone, expected = separate(member)
    assert summary['vectorized'] == len(members) and summary['steps'] == 30
    assert summary['devices']['count'] == 1
    assert set(summary) == set(expected) | {'vectorized', 'vectorized_group'}
    # Counted on a member's step; a resident run counts its dispatched loop of steps, whose own
    # counter adds a few hundred FLOPs (1e-3). HYPER's smoothing and L2 add a little more.
    assert summary['flops_per_step'] == pytest.approx(
        expected['flops_per_step'], rel=1e-3 if members is SEEDS else 0.05)
    _assert_close(expected['final'], summary['final'], tolerance)
    _assert_close_rows(_rows(alone), _rows(workdir), tolerance)
    # The member's workdir holds a single-run checkpoint: load_run reads it like any run's.
    saved = lambda run_dir: train_state.state_to_save(research.load_run(str(run_dir)).state)
    _assert_close(saved(alone), saved(workdir), tolerance)  # Parameters and optimizer state.
    config = json.loads((workdir / 'config.json').read_text())
    assert config.pop('vectorize_mode') == member.get('vectorize_mode', 'vmap')
    assert config == {k: v for k, v in json.loads((alone / 'config.json').read_text()).items()
                      if k != 'vectorize_mode'}
    finals.append(summary['final']['validation']['loss'])
  assert len(set(finals)) == len(members)  # The members did train differently.


def test_a_group_stopped_after_a_checkpoint_resumes_to_the_same_result(tmp_path, hyper_group):
  workdirs, summaries = hyper_group
  _, partial = _group(tmp_path, HYPER, max_steps=20)
  assert partial == [{'steps': 20, 'finished': False}] * len(HYPER)
  resumed_dirs, resumed = _group(tmp_path, HYPER)
  for workdir, resumed_dir, summary, again in zip(workdirs, resumed_dirs, summaries, resumed):
    assert again['resumed_from_step'] == 20 and again['final'] == summary['final']
    assert _rows(resumed_dir) == _rows(workdir)
    jax.tree.map(np.testing.assert_array_equal, research.load_run(str(workdir)).params,
                 research.load_run(str(resumed_dir)).params)
  # Finished: a third call trains nothing and returns the same summaries.
  assert _group(tmp_path, HYPER)[1] == resumed
  # Workdirs that hold another experiment's runs are refused, and left as they were.
  other = [_config(**m, **{'model.hidden_sizes': (16,)}) for m in HYPER]
  with pytest.raises(UserError, match='different experiment'):
    vectorized.train_vectorized(other, [str(w) for w in workdirs], str(tmp_path / 'other'))
  assert research.load_run(str(workdirs[0])).config.model.hidden_sizes == (32,)


def test_vectorizable_names_what_differs():
  assert grouping.vectorizable([_config(**m) for m in SEEDS]) is None
  assert grouping.vectorizable([_config(**m) for m in HYPER]) is None
  reason = grouping.vectorizable([_config(), _config(**{'model.hidden_sizes': (16,)})])
  assert reason == 'differ in model.hidden_sizes'
  reason = grouping.vectorizable([_config(), _config(batch_size=16, loss='mse')])
  assert reason == 'differ in batch_size, loss'
  assert 'one device' in grouping.vectorizable([_config(num_devices=8)] * 2)
  assert grouping.vectorizable([_config(num_devices=None)] * 2) is None  # Runs on device 0.
  # Early stopping is per member (a stopped member is frozen while the others go on).
  assert grouping.vectorizable([_config(**{'early_stopping.patience': 2})] * 2) is None
  assert grouping.vectorizable([]) is not None
  with pytest.raises(UserError, match='differ in model.hidden_sizes'):
    vectorized.train_vectorized([_config(), _config(**{'model.hidden_sizes': (16,)})],
                                ['a', 'b'], 'g')
  with pytest.raises(UserError, match="vectorize_mode 'unrol'.*did you mean 'unroll'"):
    vectorized.train_vectorized([_config(vectorize_mode='unrol')] * 2, ['a', 'b'], 'g')


# Seeds that stop early at different steps (0 at step 10, 2 at step 25) and one that never
# stops (1), trained 5 steps per dispatch, with a profile trace: what the one loop gives a group.
EARLY = dict(total_steps=60, eval_every=5, checkpoint_every=10, steps_per_dispatch=5,
             vectorize_mode='unroll', profile_steps=(6, 10), **{
                 'model.dropout_rate': 0.0, 'optimizer.schedule': 'constant',
                 'early_stopping.patience': 1, 'early_stopping.metric': 'loss',
                 'early_stopping.min_delta': 0.03})


def test_a_group_stops_early_per_member_dispatches_k_steps_and_profiles(tmp_path, separate):
  members = [dict(EARLY, seed=s) for s in (0, 1, 2)]
  workdirs, summaries = _group(tmp_path, members)
  steps = [s['steps'] for s in summaries]
  assert steps == [10, 60, 25], steps
  for member, workdir, summary in zip(members, workdirs, summaries):
    alone, expected = separate(dict(member, profile_steps=None))
    assert summary['steps'] == expected['steps']
    assert summary['early_stopping'] == expected['early_stopping']
    assert summary['final'] == expected['final']  # Unrolled: bit-identical to its own run.
    assert _rows(workdir) == _rows(alone)
    run = research.load_run(str(workdir))
    assert run.step == summary['steps']  # Its checkpoint holds the state it stopped with.
    jax.tree.map(np.testing.assert_array_equal, run.params,
                 research.load_run(str(alone)).params)
  traces = list((tmp_path / 'group_dir' / 'profile').rglob('*.xplane.pb'))
  assert traces, 'the group wrote no profile trace'

"""A run killed with SIGKILL and started again ends bit-identical to one never interrupted."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import research
from conftest import ROOT, run_cli

# Five kills, each after the next checkpoint plus at most 0.3 s, end before step ~500 even at
# ~200 steps/s (measured at idle: 1,500 steps in ~8 s), so 1,000 steps leave a margin.
TOTAL = 1000
ARGS = ['--config', 'configs/default.py', f'--config.total_steps={TOTAL}',
        '--config.checkpoint_every=25', '--config.eval_every=50', '--config.log_every=10',
        '--config.model.dropout_rate=0.2', '--config.num_devices=1']


def _train(workdir, env):
  return subprocess.Popen([sys.executable, '-m', 'research', 'train', *ARGS,
                           '--workdir', str(workdir)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _committed_steps(workdir):
  ckpts = workdir / 'checkpoints'
  return sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit()) if ckpts.exists() else []


def _metric_rows(workdir):
  return [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]


ENV = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')


def _run(workdir, **kill):
  """The run in `workdir`, forked (tests/forkserver.py); `kill` as run_cli's `kill_*`."""
  return run_cli('train', *ARGS, '--workdir', str(workdir), devices=1, **kill)


def _checkpoint(workdir, step):
  """The first checkpoint at or after `step` to appear (`step` a multiple of 25, after the newest
  checkpoint): a run's checkpoints are written in order, every 25 steps."""
  return workdir / 'checkpoints' / str(step)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """One uninterrupted run that the interrupted ones must reproduce."""
  workdir = tmp_path_factory.mktemp('reference')
  result = _run(workdir)
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir


def _wait_for_checkpoint(workdir, proc, at_least):
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if any(s >= at_least for s in _committed_steps(workdir)):
      return
    time.sleep(0.05)
  raise AssertionError(f'no checkpoint >= {at_least} in {workdir} (exit {proc.poll()})')


def _assert_same_run(reference, other):
  a, b = research.load_run(str(reference)), research.load_run(str(other))
  assert a.step == b.step == TOTAL
  leaves = lambda run: jax.tree.leaves((run.state.params, run.state.opt_state, run.state.rng))
  for x, y in zip(leaves(a), leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  summary_a = json.loads((reference / 'summary.json').read_text())['final']
  summary_b = json.loads((other / 'summary.json').read_text())['final']
  assert summary_a == summary_b


# Kill points: one run is killed five times, each time once a checkpoint newer than the last kill
# has appeared plus a seeded random wait, so the kills land between steps, in evaluations (every
# 50 steps) and during async checkpoint writes (every 25); each restart resumes the previous one.
KILL_SEEDS = (0, 1, 2, 3, 4)


@pytest.mark.slow
def test_sigkill_at_five_random_points_then_resume_is_bit_identical(tmp_path, reference):
  killed, last_kill_step = tmp_path / 'killed', 0
  for seed in KILL_SEEDS:
    proc = _run(killed, kill_when=_checkpoint(killed, last_kill_step + 25),
                kill_after=random.Random(seed).uniform(0.0, 0.3))
    steps_at_kill = _committed_steps(killed)
    assert proc.returncode == -signal.SIGKILL, f'the run ended before kill {seed}'
    assert max(steps_at_kill) < TOTAL, steps_at_kill  # Killed part-way.
    last_kill_step = max(steps_at_kill)

  resumed = _run(killed)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert 'resumed from step' in resumed.stderr
  _assert_same_run(reference, killed)
  assert _metric_rows(reference) == _metric_rows(killed)


@pytest.mark.slow
@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_preemption_signal_checkpoints_exits_and_resumes_exactly(tmp_path, reference, signum):
  workdir = tmp_path / 'preempted'
  proc = _run(workdir, kill_when=_checkpoint(workdir, 100), kill_signal=signum)
  stderr = proc.stderr
  assert proc.returncode == 128 + signum, stderr[-2000:]
  assert f'stopped by {signal.Signals(signum).name} after step' in stderr
  assert 'Traceback' not in stderr
  stopped_at = int(stderr.split('after step ')[1].split(';')[0])
  assert stopped_at in _committed_steps(workdir) and stopped_at < TOTAL
  assert not (workdir / '.lock').exists()
  resumed = _run(workdir)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert f'resumed from step {stopped_at}' in resumed.stderr
  _assert_same_run(reference, workdir)


@pytest.mark.slow
def test_one_run_per_workdir_and_stale_locks_are_taken_over(tmp_path):
  workdir = tmp_path / 'w'
  first = _train(workdir, ENV)
  _wait_for_checkpoint(workdir, first, 25)
  second = _run(workdir)  # Forked (tests/forkserver.py), while the first still runs.
  assert second.returncode == 2 and f'is in use by process {first.pid}' in second.stderr
  first.send_signal(signal.SIGKILL)
  first.wait()
  assert (workdir / '.lock').exists()  # Left behind by the killed run.
  third = _run(workdir)
  assert third.returncode == 0, third.stderr[-2000:]
  assert 'taking over' in third.stderr and not (workdir / '.lock').exists()


def test_a_damaged_newest_checkpoint_is_set_aside_and_the_run_resumes(tmp_path):
  args = ['train', '--config', 'configs/default.py', '--config.checkpoint_every=20',
          '--config.num_devices=1', '--workdir', str(tmp_path)]
  assert run_cli(*args, '--config.total_steps=100').returncode == 0
  for array_file in (tmp_path / 'checkpoints' / '100' / 'state').rglob('d/*'):
    array_file.write_bytes(array_file.read_bytes()[:10])  # Truncated, as by a full disk.
  (tmp_path / 'checkpoints' / '80' / 'commit_success.txt').unlink()  # Never finished.
  (tmp_path / 'checkpoints' / '120.orbax-checkpoint-tmp-99').mkdir()  # An interrupted save.
  result = run_cli(*args, '--config.total_steps=140')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'checkpoints/100 cannot be restored' in result.stderr
  assert 'checkpoints/80 cannot be restored (no commit_success.txt' in result.stderr
  assert 'resumed from step 60' in result.stderr
  for bad in ('100', '80'):  # Kept, not deleted.
    assert (tmp_path / 'checkpoints.damaged' / bad / 'state').is_dir()
  assert json.loads((tmp_path / 'summary.json').read_text())['steps'] == 140

  # Every step damaged: refused (exit 2) with each step named; nothing moved or deleted.
  for array_file in (tmp_path / 'checkpoints').rglob('d/*'):
    array_file.write_bytes(b'')
  before = _files(tmp_path / 'checkpoints')
  result = run_cli(*args, '--config.total_steps=160')
  assert result.returncode == 2, result.stderr[-3000:]
  # (Tensorstore may still print 'Event loop is closed' from its own threads around it.)
  message, = [m for m in result.stderr.splitlines() if m.startswith('research train: error:')]
  assert 'no checkpoint in' in message and '140:' in message and '120:' in message
  assert _files(tmp_path / 'checkpoints') == before


def _files(directory):
  return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob('*')
          if p.is_file()}


def _with_file_size_limit(limit, command):
  """`command` run where files may grow to `limit` bytes, then writes fail with EFBIG ("File too
  large"), as they fail with ENOSPC on a full disk (SIGXFSZ ignored so the write returns). A small
  Python sets the limit and execs the command: no preexec_fn fork of this multithreaded process."""
  setup = ('import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); '
           f'resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); '
           'os.execv(sys.argv[1], sys.argv[1:])')
  return [sys.executable, '-c', setup, *command]


def test_a_checkpoint_that_cannot_be_written_fails_clearly_and_keeps_the_older_ones(tmp_path):
  args = ['train', '--config', 'configs/default.py',
          '--config.checkpoint_every=50', '--config.num_devices=1', '--workdir', str(tmp_path),
          '--config.model.hidden_sizes=(512,512)']
  assert run_cli(*args, '--config.total_steps=100').returncode == 0
  before = _files(tmp_path / 'checkpoints')
  # Parameters and Adam moments are ~3.6 MB, far above the limit; metric files stay below it.
  # (A real subprocess: the file size limit is set before it execs `python -m research`.)
  full = subprocess.run(_with_file_size_limit(
      200_000, [sys.executable, '-m', 'research', *args, '--config.total_steps=200']),
                        cwd=ROOT, env=ENV, text=True, capture_output=True)
  assert full.returncode == 1, full.stderr[-3000:]
  message = full.stderr.strip().splitlines()[-1]
  assert 'could not write a checkpoint' in message and 'File too large' in message, message
  assert 'are intact' in message and 'Traceback' not in full.stderr
  after = _files(tmp_path / 'checkpoints')
  assert {k: v for k, v in after.items() if k.split('/')[0] in ('50', '100')} == before
  again = run_cli(*args, '--config.total_steps=200')  # Space is back: it resumes and finishes.
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'resumed from step 100' in again.stderr
  assert json.loads((tmp_path / 'summary.json').read_text())['steps'] == 200


DIVERGING = ['train', '--config', 'configs/default.py', '--config.total_steps=120',
             '--config.checkpoint_every=5', '--config.log_every=5', '--config.num_devices=1',
             '--config.optimizer.name=sgd', '--config.optimizer.learning_rate=20.0',
             '--config.optimizer.schedule=warmup_cosine', '--config.optimizer.warmup_steps=100',
             '--config.loss=mse']


def test_a_nonfinite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
  result = run_cli(*DIVERGING, '--workdir', str(tmp_path / 'stop'))
  assert result.returncode == 1, result.stderr[-2000:]
  message = result.stderr.strip().splitlines()[-1]
  assert 'non-finite loss or gradients at step' in message and 'Traceback' not in result.stderr
  bad_step = int(message.split('at step ')[1].split(';')[0])
  good_step = int(message.split('checkpoint is step ')[1].split('.')[0])
  assert good_step < bad_step <= good_step + 5
  run = research.load_run(str(tmp_path / 'stop'))
  assert run.step == good_step
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(run.params))

  # Skipping the non-finite steps does not rescue this run: it ends with an infinite loss, which
  # fails (exit 1) instead of being reported, with the skipped steps counted in its rows.
  skipping = run_cli(*DIVERGING, '--config.skip_nonfinite=True', '--workdir',
                     str(tmp_path / 'skip'))
  assert skipping.returncode == 1, skipping.stderr[-2000:]
  assert 'the final metrics are not finite' in skipping.stderr.strip().splitlines()[-1]
  assert not (tmp_path / 'skip' / 'summary.json').exists()
  rows = [json.loads(line) for line in (tmp_path / 'skip' / 'metrics.jsonl').read_text().splitlines()]
  assert sum(r.get('skipped_nonfinite', 0) for r in rows) > 0 and rows[-1]['step'] == 120


def test_resuming_with_another_data_order_is_refused_and_old_workdirs_mean_every_epoch(tmp_path):
  """`dataset.shuffle` decides which batches come next, so a checkpoint is tied to it; a
  config.json written before the key existed meant a new order every epoch."""
  from research import config as config_lib  # pylint: disable=g-import-not-at-top
  from research.rundir import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  from research.errors import UserError  # pylint: disable=g-import-not-at-top
  config = config_lib.load(os.path.join(ROOT, 'configs', 'default.py'))
  old = json.loads(config_lib.to_json(config))
  del old['dataset']['shuffle']
  workdir = workdir_lib.Workdir(tmp_path / 'w')
  workdir.config_path.write_text(json.dumps(old))
  workdir.check_same_experiment(config)  # 'every_epoch', as before the key existed: resumable.
  config.dataset.shuffle = 'once'
  with pytest.raises(UserError,
                     match="different experiment.*dataset.shuffle: 'every_epoch' -> 'once'"):
    workdir.check_same_experiment(config)

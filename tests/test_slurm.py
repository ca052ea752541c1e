"""`research sweep --launcher slurm` and `srun` on a real single-node SLURM cluster
(tests/slurm_cluster.py: Debian's Slurm 22.05, installed with apt-get when missing, or skipped
with the reason). One cluster serves the whole session, both pytest-xdist workers included.

The sweep test runs the same two-run experiment locally and as a SLURM job array, and interrupts
both array tasks mid-training: one with `scancel --signal=TERM` (what the time-limit warning
delivers: the child checkpoints and the task requeues itself), one with a plain `scancel`
(cancelled after the child checkpointed: the next `research sweep` resubmits it). Both finish bit-identically to the
uninterrupted local runs.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

import research
import slurm_cluster
from research import config as config_lib
from conftest import ROOT, assert_usage_error, run_cli

pytestmark = pytest.mark.slow

RUNS = ('model=linear,seed=0', 'model=mlp,seed=0')


@pytest.fixture(scope='session')
def cluster():
  yield from slurm_cluster.pytest_fixture()


def _experiment(path: pathlib.Path, slurm: str = "{'time': 10, 'signal_seconds': 60}") -> str:
  path.write_text(textwrap.dedent(f"""\
      from research.sweeps.spec import Sweep, axis

      def get_sweep():
        return Sweep(name='slurm_tiny', base='configs/mnist1d_linear.py',
                     grid=axis('model', {{'linear': {{}}, 'mlp': 'configs/mnist1d_mlp.py'}}),
                     overrides={{'total_steps': 1500, 'eval_every': 250, 'log_every': 250,
                                 'checkpoint_every': 250, 'batch_size': 32}},
                     slurm={slurm})
      """))
  return str(path)


def _rows(run_dir: pathlib.Path) -> list[dict]:
  return [{k: v for k, v in json.loads(line).items() if k not in ('time', 'wall_seconds',
                                                                  'steps_per_second')}
          for line in (run_dir / 'metrics.jsonl').read_text().splitlines()]


def _wait_for_checkpoint(run_dir: pathlib.Path, timeout: float = 240) -> None:
  deadline = time.time() + timeout
  while time.time() < deadline:
    if (run_dir / 'checkpoints' / '250').is_dir():
      return
    time.sleep(0.05)
  raise AssertionError(f'no checkpoint in {run_dir}: {list(run_dir.glob("*"))}')


def _job_of(sweep_dir: pathlib.Path, run: str) -> str:
  records = [json.loads(l) for l in (sweep_dir / 'slurm' / 'jobs.jsonl').read_text().splitlines()]
  return [r['job'] for r in records if run in r['runs']][-1]


def test_slurm_array_equals_local_resumes_after_requeue_and_cancel_and_refuses_bad_input(cluster, tmp_path):
  env = {'SLURM_CONF': cluster}
  experiment = _experiment(tmp_path / 'tiny.py')
  local, remote = tmp_path / 'local', tmp_path / 'slurm'
  submitted = run_cli('sweep', experiment, '--workdir', str(remote), '--launcher', 'slurm',
                      env=env)
  assert submitted.returncode == 0, submitted.stderr[-3000:]
  assert '2 not submitted' in submitted.stdout and 'submitted 2 array task(s)' in submitted.stdout
  # Meanwhile, the reference: the same experiment with local child processes.
  reference = subprocess.Popen(
      [sys.executable, '-m', 'research', 'sweep', experiment, '--workdir', str(local),
       '--jobs', '2'], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env=dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1'))

  conf = dict(os.environ, SLURM_CONF=cluster)
  linear, mlp = (remote / r for r in RUNS)
  _wait_for_checkpoint(linear)
  subprocess.run(['scancel', '--signal=TERM', _job_of(remote, RUNS[0])], env=conf, check=True)
  _wait_for_checkpoint(mlp)
  subprocess.run(['scancel', _job_of(remote, RUNS[1])], env=conf, check=True)
  for _ in range(600):  # The cancelled task leaves the queue (its child checkpoints first).
    states = subprocess.run(['squeue', '-h', '-r', '-o', '%i', '-j', _job_of(remote, RUNS[1])],
                            env=conf, capture_output=True, text=True).stdout.split()
    if not states:
      break
    time.sleep(0.1)

  # A report works while jobs are still running (or pending after the requeue).
  report = run_cli('report', str(remote))
  assert report.returncode == 0, report.stderr[-2000:]
  rerun = run_cli('sweep', experiment, '--workdir', str(remote), '--launcher', 'slurm',
                  '--wait', env=env)
  assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
  first = rerun.stdout.splitlines()[0]
  assert '1 failed' in first and RUNS[1] in rerun.stdout, rerun.stdout
  assert 'submitted 1 array task(s)' in rerun.stdout and '2 finished' in rerun.stdout
  assert reference.wait(timeout=600) == 0, reference.stdout.read()[-3000:]

  for run in RUNS:
    log = (remote / run / 'train.log').read_text()
    assert 'restored' in log.lower() or 'resum' in log.lower(), log[-3000:]
    assert _rows(remote / run) == _rows(local / run)  # Every logged number, bit for bit.
    ours, theirs = (json.loads((d / run / 'summary.json').read_text())['final']
                    for d in (remote, local))
    assert ours == theirs
  assert f'scontrol requeue {_job_of(remote, RUNS[0])}: ok' in (linear / 'train.log').read_text()
  assert 'not requeued here' in (mlp / 'train.log').read_text()

  # Nothing left to do: status only, nothing submitted; a lost run is submitted alone.
  shutil.rmtree(mlp)
  dry = run_cli('sweep', experiment, '--workdir', str(remote), '--launcher', 'slurm',
                '--dry-run', env=env)
  assert dry.returncode == 0, dry.stderr[-2000:]
  assert '1 finished' in dry.stdout and f'would submit 1 array task(s): {RUNS[1]}' in dry.stdout
  _bad_input_touches_nothing(experiment, remote, tmp_path, cluster)


def _bad_input_touches_nothing(experiment: str, sweep_dir: pathlib.Path, tmp_path, cluster):
  """No SLURM, an unknown partition, an sbatch failure, a misspelt setting: one line, exit 2,
  and the finished run's files are as they were."""
  before = {p: p.read_bytes() for p in (sweep_dir / RUNS[0]).glob('*.json*')}
  args = ('sweep', experiment, '--workdir', str(sweep_dir), '--launcher', 'slurm')
  env = {'SLURM_CONF': cluster}
  no_slurm = run_cli(*args, env={**env, 'PATH': os.path.dirname(sys.executable)})
  assert_usage_error(no_slurm, 'sbatch', '--launcher local')
  assert_usage_error(run_cli(*args, '--partition', 'gpu-h100', env=env),
                     "unknown SLURM partition 'gpu-h100'", slurm_cluster.PARTITION)
  assert_usage_error(run_cli(*args, '--sbatch', 'mem=999999G', env=env), 'sbatch refused',
                     'node configuration')
  bad_key = _experiment(tmp_path / 'bad.py', slurm="{'partiton': 'debug'}")
  assert_usage_error(run_cli('sweep', bad_key, '--workdir', str(sweep_dir), '--launcher',
                             'slurm', env=env), "'partiton'", 'partition')
  assert {p: p.read_bytes() for p in (sweep_dir / RUNS[0]).glob('*.json*')} == before
  assert not (sweep_dir / RUNS[1]).exists()  # The failed submission started nothing.




def test_srun_two_tasks_train_like_one_process(cluster, tmp_path, data_dir):
  """`srun -n 2 research train` with no distributed flag: JAX reads SLURM's variables; two
  processes x 4 CPU devices give the losses of one process x 8 (as tests/test_multihost.py)."""
  args = ['--config', 'configs/mnist1d_mlp.py', '--config.batch_size=3600',
          '--config.eval_batch_size=1000', '--config.total_steps=6', '--config.eval_every=6',
          '--config.log_every=3']
  # The reference in this process (conftest's 8 devices), as tests/test_multihost.py does.
  config = config_lib.load('configs/mnist1d_mlp.py')
  config_lib.apply_overrides(config, [a[len('--config.'):] for a in args[2:]])
  research.train_and_evaluate(config, str(tmp_path / 'one'))
  env = dict(os.environ, SLURM_CONF=cluster,
             XLA_FLAGS='--xla_force_host_platform_device_count=4')
  two = subprocess.run(
      ['srun', '-n', '2', '--overcommit', '--kill-on-bad-exit=1', sys.executable, '-m',
       'research', 'train', *args, '--workdir', str(tmp_path / 'two')],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert two.returncode == 0, two.stderr[-3000:]
  summary = json.loads((tmp_path / 'two' / 'summary.json').read_text())
  reference = json.loads((tmp_path / 'one' / 'summary.json').read_text())
  assert summary['devices']['processes'] == 2 and summary['devices']['count'] == 8
  train = [[r['loss'] for r in _rows(tmp_path / d) if r['split'] == 'train']
           for d in ('one', 'two')]
  assert len(train[1]) == 2 and train[1] == pytest.approx(train[0], rel=1e-5)
  assert summary['final']['test']['loss'] == pytest.approx(
      reference['final']['test']['loss'], rel=1e-5)

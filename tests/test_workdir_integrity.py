"""A workdir tells the truth about the run that happened (issue: a trustworthy workdir).

Runs that never happen write nothing; a used workdir is never mixed with another experiment;
signals are honoured from process start to exit; damaged files are named; a deleted metrics file
is written again; a run that only skipped non-finite steps fails instead of reporting NaN.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_cli

BASE = ['--config', 'configs/default.py', '--config.total_steps=4', '--config.eval_every=2']


def _files(workdir):
  return {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  """A finished 4-step run of the default config (tests copy it before changing anything)."""
  workdir = tmp_path_factory.mktemp('finished') / 'w'
  result = run_cli('train', *BASE, '--workdir', str(workdir))
  assert result.returncode == 0, result.stderr
  return workdir


def _copy(src, dst):
  subprocess.run(['cp', '-a', str(src), str(dst)], check=True)
  return dst


def test_runs_that_never_happen_leave_config_json_and_run_json_untouched(finished, tmp_path):
  workdir = _copy(finished, tmp_path / 'w')
  before = _files(workdir)
  noop = run_cli('train', *BASE, '--config.optimizer.learning_rate=0.5', '--workdir', str(workdir))
  assert noop.returncode == 0 and 'nothing to do' in noop.stderr
  refused = run_cli('train', '--config', 'configs/cnn_digits.py', '--config.total_steps=4',
                    '--workdir', str(workdir))
  assert refused.returncode == 2 and 'different experiment' in refused.stderr
  assert _files(workdir) == before  # Neither wrote config.json, run.json or config_changes.


def test_a_used_workdir_without_checkpoints_is_not_mixed_with_another_experiment(
    finished, tmp_path):
  workdir = _copy(finished, tmp_path / 'w')
  subprocess.run(['rm', '-rf', str(workdir / 'checkpoints')], check=True)
  before = _files(workdir)
  other = run_cli('train', '--config', 'configs/cnn_digits.py', '--config.total_steps=4',
                  '--workdir', str(workdir))
  assert other.returncode == 2 and 'different experiment' in other.stderr, other.stderr
  assert _files(workdir) == before
  # The same experiment starts afresh and its rows replace the old attempt's.
  again = run_cli('train', *BASE, '--workdir', str(workdir))
  assert again.returncode == 0, again.stderr
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  keys = [(r['step'], r['split']) for r in rows]
  assert len(keys) == len(set(keys)), keys
  assert json.loads((workdir / 'summary.json').read_text())['steps'] == 4


def test_damaged_workdir_files_are_named_and_a_torn_metrics_line_is_tolerated(finished, tmp_path):
  damaged = _copy(finished, tmp_path / 'damaged')
  (damaged / 'config.json').write_text('{"seed": 0, "mod')
  result = run_cli('train', *BASE, '--workdir', str(damaged))
  assert result.returncode == 2
  assert 'config.json is damaged' in result.stderr and 'Traceback' not in result.stderr

  torn = _copy(finished, tmp_path / 'torn')
  subprocess.run(['rm', '-rf', str(torn / 'summary.json')], check=True)
  with open(torn / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 4, "split": "tr')  # What a crash in the middle of a write leaves.
  result = run_cli('train', *BASE, '--workdir', str(torn))
  assert result.returncode == 0, result.stderr
  lines = (torn / 'metrics.jsonl').read_text().splitlines()
  assert all(json.loads(line)['step'] <= 4 for line in lines)  # Every line whole again.


def test_skip_nonfinite_run_that_did_not_train_fails_without_a_summary(tmp_path):
  result = run_cli('train', *BASE, '--config.total_steps=20', '--config.skip_nonfinite=True',
                   '--config.optimizer.name=sgd', '--config.optimizer.learning_rate=1e38',
                   '--workdir', str(tmp_path / 'w'))
  assert result.returncode == 1, result.stderr
  assert 'not finite' in result.stderr or 'were skipped' in result.stderr
  assert not (tmp_path / 'w' / 'summary.json').exists()


def test_metrics_jsonl_deleted_during_a_run_is_written_again_whole(tmp_path):
  workdir = tmp_path / 'w'
  proc = subprocess.Popen(
      [sys.executable, '-m', 'research', 'train', '--config', 'configs/default.py',
       '--config.total_steps=3000', '--config.eval_every=1000', '--config.log_every=10',
       '--config.progress=none', '--workdir', str(workdir)],
      cwd=ROOT, env=dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1'),
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  metrics = workdir / 'metrics.jsonl'
  while proc.poll() is None and not (metrics.exists() and metrics.read_text().count('\n') >= 3):
    time.sleep(0.01)
  assert proc.poll() is None, 'the run ended before its metrics file could be deleted'
  metrics.unlink()
  _, stderr = proc.communicate(timeout=600)
  assert proc.returncode == 0, stderr
  assert 'deleted or replaced during the run' in stderr
  train_steps = [json.loads(line)['step'] for line in metrics.read_text().splitlines()
                 if json.loads(line)['split'] == 'train']
  assert train_steps == list(range(10, 3001, 10))


def _start(args, env=None):
  proc = subprocess.Popen([sys.executable, '-m', 'research', 'train', *args], cwd=ROOT,
                          env=dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1',
                                   **(env or {})),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  return proc


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_set_up_stops_cleanly_with_its_exit_code(tmp_path, signum):
  """ResNet takes seconds to initialize and compile: a signal in that window used to crash
  (SIGINT: a segmentation fault) or kill the process without a word (SIGTERM)."""
  workdir = tmp_path / 'w'
  proc = _start(['--config', 'configs/resnet_digits.py', '--config.total_steps=4',
                 '--workdir', str(workdir)])
  for line in proc.stderr:  # The handlers are installed before this line is logged.
    if 'setting up' in line:
      break
  proc.send_signal(signum)
  _, stderr = proc.communicate(timeout=600)
  assert proc.returncode == 128 + signum, stderr
  assert f'stopped by {signal.Signals(signum).name} before training started' in stderr
  assert 'Traceback' not in stderr
  assert not (workdir / '.lock').exists() and not (workdir / 'config.json').exists()


@pytest.mark.slow
def test_sigterm_during_the_final_evaluation_keeps_the_checkpoint_and_a_rerun_finishes(tmp_path):
  """The GPT config's final evaluation decodes every answer (seconds, with a model this small
  too): a SIGTERM there stops with 143 before summary.json, and the rerun evaluates the saved
  final step."""
  workdir = tmp_path / 'w'
  args = ['--config', 'configs/gpt_addition.py', '--config.total_steps=2',
          '--config.model.num_layers=1', '--config.model.hidden_size=32',
          '--config.model.mlp_dim=64', '--config.model.num_heads=2', '--config.dataset.seq_len=16',
          '--config.progress=none', '--workdir', str(workdir)]
  stopped = run_cli('train', *args, kill_when=workdir / 'checkpoints' / '2' / 'commit_success.txt',
                    kill_signal=signal.SIGTERM)
  stderr = stopped.stderr
  assert stopped.returncode == 143, stderr
  assert 'during the final evaluation' in stderr and 'Traceback' not in stderr
  assert not (workdir / 'summary.json').exists() and not (workdir / '.lock').exists()
  again = run_cli('train', *args)
  assert again.returncode == 0, again.stderr
  assert json.loads((workdir / 'summary.json').read_text())['steps'] == 2


def test_one_module_names_a_workdirs_files():
  """research/rundir/layout.py is the one place a workdir's file names are written down; the rest of
  the package refers to its constants (a renamed file cannot be missed in one reader)."""
  import re  # pylint: disable=g-import-not-at-top
  names = ('config.json', 'summary.json', 'metrics.jsonl', 'run.json', 'dataset.json',
           'config_changes.jsonl', 'checkpoints', 'checkpoints.damaged', 'report.md',
           'sweep.json', '.lock')
  pattern = re.compile('|'.join(f"['\"]{re.escape(n)}['\"]" for n in names))
  found = [f'{p.relative_to(ROOT)}:{i}: {line.strip()}'
           for p in sorted((ROOT / 'research').rglob('*.py'))
           if p.relative_to(ROOT).as_posix() != 'research/rundir/layout.py'
           for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
  assert not found, '\n'.join(found)

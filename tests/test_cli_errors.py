"""Bad input through the CLI: exit code 2, one clear line naming the problem, no traceback."""
import json

import pytest

from conftest import run_cli

DEFAULT = ['train', '--config', 'configs/default.py']


def _assert_clean_usage_error(result, *needles):
  assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
  assert 'Traceback' not in result.stderr
  error_lines = [l for l in result.stderr.splitlines() if 'error' in l]
  assert len(error_lines) == 1, result.stderr
  for needle in needles:
    assert needle in error_lines[0], error_lines[0]


@pytest.mark.parametrize('args, needles, devices', [
    (['--config.optimizer.learnin_rate=0.1'], ["did you mean 'config.optimizer.learning_rate'"], 1),
    (['--config.model.name=transformr'], ["unknown model 'transformr'", 'allowed: bert, cnn, gpt'], 1),
    (['--config.batch_size=63'], ['batch_size=63 does not divide across 8 devices'], 8),
    (['--config.batch_size=0'], ['batch_size must be > 0'], 1),
    (['--config.optimizer.learning_rate=-1.0'], ['learning_rate must be > 0'], 1),
    (['--config.dataset.name=mnistt'], ["unknown dataset 'mnistt'"], 1),
    (['--config.dataset.name=mnist'], ['mnist', 'prepare'], 1),
    (['--config.seed=abc'], ['config.seed', 'expected int'], 1),
    (['--config.num_devices=9'], ['num_devices=9'], 8),
    (['--nonsense'], ['unrecognized argument'], 1),
])
def test_bad_train_input_exits_2_with_one_line(tmp_path, args, needles, devices):
  result = run_cli(*DEFAULT, *args, '--workdir', str(tmp_path / 'w'), devices=devices)
  _assert_clean_usage_error(result, *needles)


def test_missing_and_broken_config_files(tmp_path):
  missing = run_cli('train', '--config', 'configs/defualt.py', '--workdir', str(tmp_path))
  _assert_clean_usage_error(missing, 'does not exist', "did you mean 'configs/default.py'")
  broken = tmp_path / 'broken.py'
  broken.write_text('def get_config(arg=None:\n')
  _assert_clean_usage_error(
      run_cli('train', '--config', str(broken), '--workdir', str(tmp_path / 'w')), 'syntax error')


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / 'a-file'
  blocker.write_text('not a directory')
  result = run_cli(*DEFAULT, '--workdir', str(blocker / 'run'))
  _assert_clean_usage_error(result, 'is not a writable directory')
  assert blocker.read_text() == 'not a directory'


def test_eval_of_a_directory_that_is_not_a_workdir(tmp_path):
  _assert_clean_usage_error(run_cli('eval', '--workdir', str(tmp_path)), 'not a research workdir')


def test_bad_override_on_an_existing_workdir_loses_nothing(tmp_path):
  workdir = tmp_path / 'w'
  ok = run_cli(*DEFAULT, '--config.total_steps=20', '--workdir', str(workdir))
  assert ok.returncode == 0, ok.stderr[-2000:]
  before = {p.relative_to(workdir): p.read_bytes() for p in workdir.rglob('*') if p.is_file()}
  bad = run_cli(*DEFAULT, '--config.total_steps=20', '--config.model.name=cnnn',
                '--workdir', str(workdir))
  _assert_clean_usage_error(bad, "unknown model 'cnnn'")
  after = {p.relative_to(workdir): p.read_bytes() for p in workdir.rglob('*') if p.is_file()}
  assert after == before
  assert json.loads((workdir / 'summary.json').read_text())['steps'] == 20


def test_help_and_python_dash_m():
  result = run_cli('--help')
  assert result.returncode == 0 and 'train' in result.stdout and 'eval' in result.stdout

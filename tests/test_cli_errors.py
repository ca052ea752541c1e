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
    (['--config.optimizer.name=adamm'], ["did you mean 'adam'"], 1),
    (['--config.optimizer.schedule=linear'], ['allowed: constant, cosine, warmup_cosine'], 1),
    (['--config.optimizer.weight_decay=-1.0'], ['weight_decay must be >= 0'], 1),
    (['--config.model.activation=relu6'], ['allowed: gelu, relu, sigmoid, tanh'], 1),
    (['--config.model.dropout_rate=1.0'], ['dropout_rate must be in [0, 1)'], 1),
    (['--config.task=lm'], ["unknown config.task 'lm'"], 1),
    (['--config.task=language_model'], ['needs a token dataset'], 1),
    (['--config.dtype=float16'], ["unknown config.dtype 'float16'"], 1),
    (['--config.label_smoothing=1.5'], ['label_smoothing must be in [0, 1)'], 1),
    (['--config.dataset.validation_fraction=0.0'], ['validation_fraction must be in (0, 1)'], 1),
    (['--config.parallel=pjit'], ['allowed: mesh, pmap'], 1),
    (['--config.total_steps=-5'], ['total_steps must be > 0'], 1),
    (['--config.eval_batch_size=60'], ['eval_batch_size=60 does not divide across 8'], 8),
    (['--config.dataset.name=mnist1d/scrambled'], ["unknown dataset 'mnist1d/scrambled'"], 1),
    (['--config.dataset.name=mnist_idx', '--config.dataset.manual_dir=/nonexistent/idx'],
     ['/nonexistent/idx'], 1),
    (['--config.early_stopping.mode=up'], ["unknown config.early_stopping.mode 'up'"], 1),
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


def test_bad_config_arguments_and_files(tmp_path):
  _assert_clean_usage_error(
      run_cli('train', '--config', 'configs/seed_mlp.py:datset=digits', '--workdir',
              str(tmp_path / 'w')), "did you mean 'dataset'")
  no_function = tmp_path / 'no_function.py'
  no_function.write_text('x = 1\n')
  _assert_clean_usage_error(
      run_cli('train', '--config', str(no_function), '--workdir', str(tmp_path / 'w')),
      'defines no get_config')
  wrong_type = tmp_path / 'wrong_type.py'
  wrong_type.write_text('def get_config(arg=None):\n  return {"seed": 0}\n')
  _assert_clean_usage_error(
      run_cli('train', '--config', str(wrong_type), '--workdir', str(tmp_path / 'w')),
      'must return an ml_collections.ConfigDict')
  _assert_clean_usage_error(
      run_cli('train', '--config', 'configs/default.txt', '--workdir', str(tmp_path / 'w')),
      'must name a Python file')


def test_resuming_with_another_model_is_refused_and_eval_of_a_bad_split(tmp_path):
  workdir = tmp_path / 'w'
  assert run_cli(*DEFAULT, '--config.total_steps=10', '--workdir', str(workdir)).returncode == 0
  _assert_clean_usage_error(
      run_cli(*DEFAULT, '--config.total_steps=20', '--config.model.hidden_sizes=(32,)',
              '--workdir', str(workdir)), 'holds checkpoints of a different experiment',
      'model')
  _assert_clean_usage_error(run_cli('eval', '--workdir', str(workdir), '--split', 'dev'),
                            "unknown split 'dev'")

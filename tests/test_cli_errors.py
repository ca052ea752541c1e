"""Bad input through the CLI: exit code 2, one clear line naming the problem, no traceback."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, assert_usage_error, run_cli

DEFAULT = ['train', '--config', 'configs/default.py']


@pytest.mark.parametrize('args, needles, devices', [
    (['--config.optimizer.learnin_rate=0.1'], ["did you mean 'config.optimizer.learning_rate'"], 1),
    (['--config.model.name=transformr'], ["unknown model 'transformr'", 'allowed: bert, cnn, deepspeech, gpt'], 1),
    (['--config.batch_size=63'], ['batch_size=63 does not divide across 8 devices'], 8),
    (['--config.batch_size=0'], ['batch_size must be an int >= 1'], 1),
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
    (['--config.total_steps=-5'], ['total_steps must be an int >= 1'], 1),
    (['--config.eval_batch_size=60'], ['eval_batch_size=60 does not divide across 8'], 8),
    (['--config.dataset.name=mnist1d/scrambled'], ["unknown dataset 'mnist1d/scrambled'"], 1),
    (['--config.dataset.name=mnist_idx', '--config.dataset.manual_dir=/nonexistent/idx'],
     ['/nonexistent/idx'], 1),
    (['--config.early_stopping.mode=up'], ["unknown config.early_stopping.mode 'up'"], 1),
])
def test_bad_train_input_exits_2_with_one_line(tmp_path, args, needles, devices):
  result = run_cli(*DEFAULT, *args, '--workdir', str(tmp_path / 'w'), devices=devices)
  assert_usage_error(result, *needles)


def test_missing_and_broken_config_files(tmp_path):
  missing = run_cli('train', '--config', 'configs/defualt.py', '--workdir', str(tmp_path))
  assert_usage_error(missing, 'does not exist', "did you mean 'configs/default.py'")
  broken = tmp_path / 'broken.py'
  broken.write_text('def get_config(arg=None:\n')
  assert_usage_error(
      run_cli('train', '--config', str(broken), '--workdir', str(tmp_path / 'w')), 'syntax error')


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / 'a-file'
  blocker.write_text('not a directory')
  result = run_cli(*DEFAULT, '--workdir', str(blocker / 'run'))
  assert_usage_error(result, 'is not a writable directory')
  assert blocker.read_text() == 'not a directory'


def test_eval_of_a_directory_that_is_not_a_workdir(tmp_path):
  assert_usage_error(run_cli('eval', '--workdir', str(tmp_path)), 'not a research workdir')


def test_bad_override_on_an_existing_workdir_loses_nothing(tmp_path):
  workdir = tmp_path / 'w'
  ok = run_cli(*DEFAULT, '--config.total_steps=20', '--workdir', str(workdir))
  assert ok.returncode == 0, ok.stderr[-2000:]
  before = {p.relative_to(workdir): p.read_bytes() for p in workdir.rglob('*') if p.is_file()}
  bad = run_cli(*DEFAULT, '--config.total_steps=20', '--config.model.name=cnnn',
                '--workdir', str(workdir))
  assert_usage_error(bad, "unknown model 'cnnn'")
  after = {p.relative_to(workdir): p.read_bytes() for p in workdir.rglob('*') if p.is_file()}
  assert after == before
  assert json.loads((workdir / 'summary.json').read_text())['steps'] == 20


def test_help_and_python_dash_m():
  result = run_cli('--help')
  assert result.returncode == 0 and 'train' in result.stdout and 'eval' in result.stdout


def test_bad_config_arguments_and_files(tmp_path):
  assert_usage_error(
      run_cli('train', '--config', 'configs/seed_mlp.py:datset=digits', '--workdir',
              str(tmp_path / 'w')), "did you mean 'dataset'")
  no_function = tmp_path / 'no_function.py'
  no_function.write_text('x = 1\n')
  assert_usage_error(
      run_cli('train', '--config', str(no_function), '--workdir', str(tmp_path / 'w')),
      'defines no get_config')
  wrong_type = tmp_path / 'wrong_type.py'
  wrong_type.write_text('def get_config(arg=None):\n  return {"seed": 0}\n')
  assert_usage_error(
      run_cli('train', '--config', str(wrong_type), '--workdir', str(tmp_path / 'w')),
      'must return an ml_collections.ConfigDict')
  assert_usage_error(
      run_cli('train', '--config', 'configs/default.txt', '--workdir', str(tmp_path / 'w')),
      'must name a Python file')


def test_resuming_with_another_model_is_refused_and_eval_of_a_bad_split(tmp_path):
  workdir = tmp_path / 'w'
  assert run_cli(*DEFAULT, '--config.total_steps=10', '--workdir', str(workdir)).returncode == 0
  assert_usage_error(
      run_cli(*DEFAULT, '--config.total_steps=20', '--config.model.hidden_sizes=(32,)',
              '--workdir', str(workdir)), 'of a different experiment',
      'model')
  assert_usage_error(run_cli('eval', '--workdir', str(workdir), '--split', 'dev'),
                            "unknown split 'dev'")


# Calls research.cli.commands.main once per argument list in one process (one JAX import for all)
# and prints, per call, the exit code, stderr and whether the workdir exists afterwards.
_MAIN_PER_ARGV = '''
import contextlib, io, json, logging, os, sys

class _Stderr:  # Log records follow sys.stderr as it is redirected below.
  def write(self, text): sys.stderr.write(text)
  def flush(self): sys.stderr.flush()

logging.basicConfig(stream=_Stderr())
from research import cli
results = []
for argv, workdir in json.loads(sys.argv[1]):
  err = io.StringIO()
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
      code = cli.main(argv)
    except SystemExit as e:
      code = e.code
  results.append({'code': code, 'stderr': err.getvalue(), 'exists': os.path.exists(workdir)})
print(json.dumps(results))
'''


def _main_per_argv(calls: list[tuple[list[str], str]]) -> list[dict]:
  result = subprocess.run(
      [sys.executable, '-c', _MAIN_PER_ARGV, json.dumps(calls)], cwd=ROOT, capture_output=True,
      text=True, timeout=600,
      env=dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1'))
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.splitlines()[-1])


def test_bad_values_fail_before_the_workdir_is_created(tmp_path):
  """Each fails with exit 2 and one line naming the value, and creates no workdir (today some
  trained first, or divided by zero after compiling, or ran with seed=True as seed 1)."""
  exits = tmp_path / 'exits.py'
  exits.write_text('import sys\ndef get_config(arg=None):\n  sys.exit(0)\n')
  bool_seed = tmp_path / 'bool_seed.py'
  bool_seed.write_text('from research import config\ndef get_config():\n  c = config.base()\n'
                       '  c.total_steps, c.seed = 5, True\n  return c\n')
  cases = [
      (['--config.log_every=0'], ['config.log_every must be an int >= 1', 'got 0']),
      (['--config.log_every=-2'], ['config.log_every must be an int >= 1', 'got -2']),
      (['--config.keep_checkpoints=0'], ['config.keep_checkpoints must be an int >= 1']),
      (['--config.keep_checkpoints=-1'], ['config.keep_checkpoints must be an int >= 1']),
      (['--config.batch_size=1000000'], ['batch_size=1000000 is larger than the training split']),
      (['--config.eval_batch_size=-1'], ['config.eval_batch_size must be an int >= 1', 'got -1']),
      (['--config.eval_batch_size=0'], ['config.eval_batch_size must be an int >= 1', 'got 0']),
      (['--config.seed=True'], ['config.seed=True', 'expected int, got bool']),
      (['--config.num_devices=True'], ['config.num_devices=True', 'expected int, got bool']),
  ]
  calls, needles = [], []
  for i, (args, expected) in enumerate(cases):
    workdir = str(tmp_path / f'w{i}')
    calls.append(([*DEFAULT, '--config.total_steps=5', *args, '--workdir', workdir], workdir))
    needles.append(expected)
  for spec, expected in [('configs/default.py:foo=1', ['takes no argument', "'foo=1'"]),
                         (str(exits), ['sys.exit(0)']),
                         (str(bool_seed), ['config.seed must be an int, got True'])]:
    workdir = str(tmp_path / f'w{len(calls)}')
    calls.append((['train', '--config', spec, '--workdir', workdir], workdir))
    needles.append(expected)
  for (argv, _), expected, result in zip(calls, needles, _main_per_argv(calls)):
    assert result['code'] == 2, (argv, result)
    assert 'Traceback' not in result['stderr'], (argv, result['stderr'])
    lines = [l for l in result['stderr'].splitlines() if 'error' in l]
    assert len(lines) == 1, (argv, result['stderr'])
    for needle in expected:
      assert needle in lines[0], (argv, lines[0])
    assert not result['exists'], argv

"""What a new user meets first: argument errors before JAX is imported, --version, `research
list`, `train --dry-run`, and clean output (each evaluation once, no absl warning on a dataset's
first use, no control characters from TFDS off a terminal)."""
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys

from conftest import ROOT, run_cli

# Calls research.cli.commands.main on each argument list in one process that starts without JAX, and
# prints each call's exit code, stdout and stderr, and whether JAX got imported.
_WITHOUT_JAX = '''
import contextlib, io, json, sys
import research.cli.commands
imported_by_cli = 'jax' in sys.modules
results = []
for argv in json.loads(sys.argv[1]):
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      code = research.cli.commands.main(argv)
    except SystemExit as e:
      code = e.code
  results.append({'code': code, 'stdout': out.getvalue(), 'stderr': err.getvalue()})
print(json.dumps({'imported_by_cli': imported_by_cli, 'jax': 'jax' in sys.modules,
                  'results': results}))
'''
CONTROL = re.compile(r'[\r\x1b]')


def _without_jax(*argvs: list[str]) -> dict:
  result = subprocess.run([sys.executable, '-c', _WITHOUT_JAX, json.dumps(argvs)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.splitlines()[-1])


def test_argument_errors_are_reported_without_importing_jax(tmp_path):
  workdir = str(tmp_path / 'w')
  cases = [
      (['train', '--config', 'configs/default.py', '--workdr', workdir], '--workdir'),
      (['train', '--config', 'configs/default.py', '--workdir', workdir, '--confg.seed=1'],
       "unrecognized argument '--confg.seed=1'"),
      (['train', '--config', 'configs/default.py', '--workdir', ''], 'must name a directory'),
      (['train', '--config', 'configs/default.py', '--workdir', '  '], 'must name a directory'),
      (['eval', '--workdir', ''], 'must name a directory'),
      (['generate', '--workdir', '', '--prompt', '1+1='], 'must name a directory'),
      (['sweep', 'experiments/seed_ablations.py', '--workdir', ''], 'must name a directory'),
      (['report', ''], 'must name a directory'),
      (['generate', '--workdir', workdir, '--prompt', 'a', '--max-new-tokens', '-5'],
       '--max-new-tokens: must be an integer >= 1, got -5'),
      (['generate', '--workdir', workdir, '--prompt', 'a', '--max-new-tokens', '0'],
       '--max-new-tokens: must be an integer >= 1'),
      (['generate', '--workdir', workdir, '--prompt', 'a', '--temperature', 'nan'],
       '--temperature: must be a finite number >= 0 (0: greedy), got nan'),
      (['generate', '--workdir', workdir, '--prompt', 'a', '--temperature', 'inf'],
       '--temperature: must be a finite number'),
      (['generate', '--workdir', workdir, '--prompt', 'a', '--temperature', '-0.5'],
       '--temperature: must be a finite number >= 0'),
      (['generate', '--workdir', workdir, '--prompt', 'a', '--top-k', '0'], '--top-k'),
      (['sweep', 'experiments/seed_ablations.py', '--workdir', workdir, '--jobs', '0'], '--jobs'),
      (['list', 'model'], "invalid choice: 'model'"),
      (['tran', '--config', 'configs/default.py'], "invalid choice: 'tran'"),
  ]
  report = _without_jax(*[argv for argv, _ in cases])
  assert not report['imported_by_cli'] and not report['jax']
  for (argv, needle), result in zip(cases, report['results']):
    assert result['code'] == 2, (argv, result)
    lines = result['stderr'].splitlines()
    assert len(lines) == 1 and needle in lines[0], (argv, result['stderr'])
  assert not os.path.exists(workdir)


def test_version_and_listing_configs_and_keys_without_jax():
  report = _without_jax(['--version'], ['list', 'configs'], ['list', 'keys'])
  assert not report['jax']
  version, configs, keys = report['results']
  assert version['code'] == 0
  assert version['stdout'].strip() == f"research {importlib.metadata.version('research')}"
  assert configs['code'] == 0
  listed = configs['stdout']
  for path in sorted((ROOT / 'configs').glob('*.py')):
    assert f'configs/{path.name}' in listed
  assert re.search(r"^configs/default\.py +The seed's network", listed, re.M)
  assert re.search(r'^configs/seed_mlp\.py\[:ARG\] ', listed, re.M)  # Takes an argument.
  assert keys['code'] == 0
  assert re.search(r'^optimizer\.learning_rate +0\.001$', keys['stdout'], re.M)
  assert re.search(r'^eval_batch_size +None \(int\)$', keys['stdout'], re.M)
  assert re.search(r'^keep_checkpoints +3$', keys['stdout'], re.M)


def test_list_shows_every_registry():
  result = run_cli('list')
  assert result.returncode == 0, result.stderr[-2000:]
  sections = {}
  for line in result.stdout.splitlines():
    if not line.startswith(' '):
      current = sections.setdefault(line.rstrip(':'), [])
    else:
      current.append(line.split()[0])
  assert list(sections) == ['configs', 'models', 'datasets', 'losses', 'optimizers', 'tasks',
                            'keys']
  assert {'mlp', 'linear', 'cnn', 'resnet', 'vgg', 'vit', 'gru', 'wavenet', 'bert',
          'gpt'} <= set(sections['models'])
  assert {'digits', 'mnist1d', 'addition', 'tones', 'diabetes', 'sunspots'} <= set(
      sections['datasets'])
  assert {'cross_entropy', 'mse', 'mae', 'huber',
          'sigmoid_binary_cross_entropy'} <= set(sections['losses'])
  assert {'sgd', 'adam', 'adamw'} <= set(sections['optimizers'])
  assert sections['tasks'] == ['classification', 'language_model', 'masked_lm', 'regression',
                               'ctc']
  assert {'seed', 'batch_size', 'model.name', 'wandb.project'} <= set(sections['keys'])


def test_dry_run_prints_the_resolved_config_and_creates_nothing(tmp_path):
  workdir = tmp_path / 'w'
  result = run_cli('train', '--config', 'configs/default.py', '--config.total_steps=7',
                   '--config.optimizer.learning_rate=0.05', '--workdir', str(workdir),
                   '--dry-run')
  assert result.returncode == 0, result.stderr[-2000:]
  resolved = json.loads(result.stdout)  # The whole of stdout is the config.
  assert resolved['total_steps'] == 7 and resolved['eval_every'] == 7
  assert resolved['optimizer']['learning_rate'] == 0.05
  assert resolved['num_epochs'] > 0 and resolved['dataset']['data_dir']
  assert not workdir.exists()
  bad = run_cli('train', '--config', 'configs/default.py', '--config.log_every=0', '--workdir',
                str(workdir), '--dry-run')
  assert bad.returncode == 2 and 'log_every' in bad.stderr and not workdir.exists()


def test_first_run_and_eval_print_clean_lines(tmp_path):
  """On a dataset's first use: no absl warning; each evaluation printed once (the progress
  line, off a terminal); `eval` preparing the dataset again writes no control characters and
  keeps stdout to its JSON line."""
  data_dir, workdir = tmp_path / 'tfds', tmp_path / 'w'
  env = {'TFDS_DATA_DIR': str(data_dir)}
  train = run_cli('train', '--config', 'configs/default.py', '--config.total_steps=4',
                  '--config.eval_every=2', '--workdir', str(workdir), env=env)
  assert train.returncode == 0, train.stderr[-3000:]
  assert not re.search(r'WARNING| W absl\]', train.stderr), train.stderr
  evaluation_lines = [l for l in train.stderr.splitlines() if 'validation' in l]
  assert len(evaluation_lines) == 2, train.stderr  # Steps 2 and 4, once each.
  assert all('step 2/4' in l or 'step 4/4' in l for l in evaluation_lines), evaluation_lines
  assert not CONTROL.search(train.stderr + train.stdout)
  assert json.loads(train.stdout)['steps'] == 4  # TFDS's "Downloading and preparing": stderr.
  shutil.rmtree(data_dir)  # `eval` prepares the dataset again, where TFDS draws its bars.
  evaluate = run_cli('eval', '--workdir', str(workdir), env=env)
  assert evaluate.returncode == 0, evaluate.stderr[-3000:]
  assert not CONTROL.search(evaluate.stderr + evaluate.stdout), repr(evaluate.stderr[-2000:])
  assert json.loads(evaluate.stdout)['split'] == 'test'  # Nothing else on stdout.
  assert 'Variant folder' not in evaluate.stderr

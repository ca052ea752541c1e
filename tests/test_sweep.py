"""Sweeps: expansion of experiment files, dry runs, bad experiment files, and resuming a sweep."""
import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, run_cli
from research import config as config_lib
from research.errors import UserError
from research.sweeps import grid, plan
from research.sweeps.spec import Setting, Sweep, axis, one_at_a_time, product, zip_axes


def test_product_zip_and_seeds_expand_to_named_runs():
  points = product(
      axis('model', {'mlp': {}, 'cnn': Setting(config='configs/cnn_digits.py',
                                                overrides={'model.dropout_rate': 0.1})}),
      zip_axes(axis('lr', [0.1, 0.01], key='optimizer.learning_rate'),
               axis('opt', ['sgd', 'adam'], key='optimizer.name')))
  runs = grid.expand(Sweep(name='t', base='configs/default.py', grid=points, seeds=2,
                           overrides={'total_steps': 5}))
  assert [r.name for r in runs] == [
      'model=mlp,lr=0.1,opt=sgd,seed=0', 'model=mlp,lr=0.1,opt=sgd,seed=1',
      'model=mlp,lr=0.01,opt=adam,seed=0', 'model=mlp,lr=0.01,opt=adam,seed=1',
      'model=cnn,lr=0.1,opt=sgd,seed=0', 'model=cnn,lr=0.1,opt=sgd,seed=1',
      'model=cnn,lr=0.01,opt=adam,seed=0', 'model=cnn,lr=0.01,opt=adam,seed=1']
  cnn = runs[-1]
  assert cnn.config == 'configs/cnn_digits.py' and runs[0].config == 'configs/default.py'
  assert cnn.overrides == ('total_steps=5', 'model.dropout_rate=0.1',
                           'optimizer.learning_rate=0.01', 'optimizer.name=adam', 'seed=1')
  assert cnn.group == 'model=cnn,lr=0.01,opt=adam' and cnn.seed == 1
  assert dict(cnn.labels) == {'model': 'cnn', 'lr': '0.01', 'opt': 'adam'}


def test_one_at_a_time_labels_factor_and_setting_around_a_base():
  points = one_at_a_time(axis('act', ['tanh'], key='model.activation'),
                         axis('width', {'wide': {'model.hidden_sizes': (256,)}}), base='base')
  assert [dict(p.labels) for p in points] == [
      {'factor': 'base', 'setting': 'base'}, {'factor': 'act', 'setting': 'tanh'},
      {'factor': 'width', 'setting': 'wide'}]
  runs = grid.expand(Sweep(name='t', base='configs/default.py', grid=points))
  assert runs[2].overrides == ('model.hidden_sizes=(256,)', 'seed=0')


@pytest.mark.parametrize('make, needle', [
    (lambda: zip_axes(axis('a', [1, 2], key='seed'), axis('b', [1], key='batch_size')),
     'equal length'),
    (lambda: product(axis('a', [1], key='x'), axis('a', [2], key='y')), "'a' appears twice"),
    (lambda: axis('a', [1, 2]), "key='a.b'"),
])
def test_malformed_axes_are_user_errors(make, needle):
  with pytest.raises(UserError, match=needle):
    make()


def test_expansion_rejects_duplicate_points_and_seed_overrides():
  twice = axis('a', {'x': {}}) + axis('a', {'x': {}})
  with pytest.raises(UserError, match="both named 'a=x'"):
    grid.expand(Sweep(name='t', base='configs/default.py', grid=twice))
  with pytest.raises(UserError, match='Sweep\\(seeds=N\\)'):
    grid.expand(Sweep(name='t', base='c.py', grid=axis('s', [1], key='seed')))


def _write_experiment(path, grid: str, seeds: int = 1, extra: str = '',
                      base: str = 'configs/default.py'):
  path.write_text(textwrap.dedent(f"""\
      from research.sweeps.spec import Metric, Sweep, axis, product

      def get_sweep():
        return Sweep(name='tiny', base={base!r}, seeds={seeds},
                     grid={grid},
                     overrides={{'total_steps': 20, 'eval_every': 10,
                                 'model.hidden_sizes': (16,), 'batch_size': 32}}{extra})
      """))
  return str(path)


def _assert_one_error_line(result, *needles):
  assert result.returncode == 2, (result.returncode, result.stdout, result.stderr[-2000:])
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
  for needle in needles:
    assert needle in lines[0], lines[0]


def test_dry_run_lists_every_run_and_runs_nothing(tmp_path):
  experiment = _write_experiment(
      tmp_path / 'exp.py', "axis('act', ['relu', 'tanh'], key='model.activation')", seeds=2)
  result = run_cli('sweep', experiment, '--workdir', str(tmp_path / 'sweep'), '--dry-run')
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0].startswith('tiny: 4 runs (2 points x 2 seeds)')
  assert [l.split(':')[0] for l in lines[1:5]] == [
      'act=relu,seed=0', 'act=relu,seed=1', 'act=tanh,seed=0', 'act=tanh,seed=1']
  assert '--config.model.activation=tanh' in lines[4] and '--config.seed=1' in lines[4]
  assert lines[-1] == ('would start 2 task(s) (0 run(s) already finished): '
                       'act=relu,seeds=0+1 (vectorized); act=tanh,seeds=0+1 (vectorized)')
  # Points that differ only in learning rate join one vmapped program.
  experiment = _write_experiment(
      tmp_path / 'lr.py', "axis('lr', [0.1, 0.01], key='optimizer.learning_rate')", seeds=2)
  result = run_cli('sweep', experiment, '--workdir', str(tmp_path / 'sweep'), '--dry-run')
  assert result.stdout.splitlines()[-1] == (
      'would start 1 task(s) (0 run(s) already finished): '
      '4 runs of 2 points: lr=0.1; lr=0.01 (vectorized)'), result.stdout
  assert not (tmp_path / 'sweep').exists()


@pytest.mark.parametrize('body, needles', [
    ('x = 1\n', ['defines no get_sweep()']),
    ('def get_sweep():\n  return 3\n', ['must return a research.sweeps.spec.Sweep']),
    (None, ['run act=relu,seed=0', "did you mean 'config.model.activation'"]),
    ('def get_sweep(:\n', ['failed to load', 'SyntaxError']),
])
def test_bad_experiment_files_exit_2_with_one_line(tmp_path, body, needles):
  path = tmp_path / 'exp.py'
  if body is None:  # A typo in an override key: caught before any run starts.
    _write_experiment(path, "axis('act', ['relu'], key='model.activaton')")
  else:
    path.write_text(body)
  result = run_cli('sweep', str(path), '--workdir', str(tmp_path / 'sweep'))
  _assert_one_error_line(result, *needles)
  assert not (tmp_path / 'sweep').exists()


def test_finished_runs_are_stale_only_for_real_config_differences(tmp_path):
  """Derived values (total_steps <-> num_epochs, intervals, data_dir) and settings a run predates
  (absent from its config.json, default now) are not differences; a changed setting is."""
  experiment = _write_experiment(tmp_path / 'exp.py',
                                 "axis('act', ['relu'], key='model.activation')")
  runs = grid.expand(grid.load_experiment(experiment))
  configs = grid.build_configs(runs)
  run_dir = tmp_path / 'sweep' / runs[0].name
  run_dir.mkdir(parents=True)
  stored = json.loads(config_lib.to_json(config_lib.resolve(configs[runs[0].name], 40)))
  stored['dataset']['data_dir'] = '/somewhere/else'
  del stored['dataset']['shuffle']  # Written before the setting existed.
  (run_dir / 'config.json').write_text(json.dumps(stored))
  assert plan.stale_runs(runs, configs, tmp_path / 'sweep') == {}
  configs[runs[0].name].dataset.shuffle = 'once'
  configs[runs[0].name].optimizer.learning_rate = 0.5
  stale = plan.stale_runs(runs, configs, tmp_path / 'sweep')
  assert stale == {runs[0].name: ["dataset.shuffle: (not set) -> 'once'",
                                  'optimizer.learning_rate: 0.001 -> 0.5']}


@pytest.mark.slow
def test_rerun_completes_only_missing_runs_and_reports_failures(tmp_path):
  """A finished run is left untouched, a half-finished one resumes from its checkpoint, and a
  failing run is reported with its log while the others go on (exit 1)."""
  experiment = _write_experiment(
      tmp_path / 'exp.py',
      "axis('data', {'digits': {}, 'broken': {'dataset.name': 'mnist_idx', "
      "'dataset.manual_dir': '/nonexistent/idx'}})", seeds=2)
  sweep_dir = tmp_path / 'sweep'
  finished, half = sweep_dir / 'data=digits,seed=0', sweep_dir / 'data=digits,seed=1'
  # Make the state a killed sweep leaves: seed 0 done, seed 1 stopped at step 10 (checkpointed).
  def train(run_dir, steps):
    return run_cli('train', '--config', 'configs/default.py', '--workdir', str(run_dir),
                   f'--config.total_steps={steps}', '--config.eval_every=10',
                   '--config.model.hidden_sizes=(16,)', '--config.batch_size=32',
                   f'--config.seed={run_dir.name[-1]}')
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    for result in pool.map(train, (finished, half), (20, 10)):
      assert result.returncode == 0, result.stderr[-2000:]
  (half / 'summary.json').unlink()
  before = {p.name: p.stat().st_mtime_ns for p in finished.iterdir() if p.is_file()}

  result = run_cli('sweep', experiment, '--workdir', str(sweep_dir), '--jobs', '2',
                   '--no-vectorize')
  assert result.returncode == 1, (result.stdout, result.stderr[-2000:])
  assert '1 already finished, 3 to start' in result.stdout
  assert {p.name: p.stat().st_mtime_ns for p in finished.iterdir() if p.is_file()} == before
  resumed = json.loads((half / 'summary.json').read_text())
  assert resumed['resumed_from_step'] == 10 and resumed['steps'] == 20
  for seed in (0, 1):
    log = sweep_dir / f'data=broken,seed={seed}' / 'train.log'
    assert f'FAILED data=broken,seed={seed} (exit 2); log: {log}' in result.stdout
    assert '/nonexistent/idx' in log.read_text()
  record = json.loads((sweep_dir / 'sweep.json').read_text())
  assert [r['name'] for r in record['runs']][:2] == [finished.name, half.name]
  # The experiment changes afterwards (more steps, and a log interval, which changes no result):
  # the finished runs are not its results any more, so the sweep refuses and touches nothing.
  record_before = (sweep_dir / 'sweep.json').read_text()
  changed = tmp_path / 'changed.py'
  changed.write_text(pathlib.Path(experiment).read_text().replace(
      "'total_steps': 20,", "'total_steps': 30, 'log_every': 7,"))
  stale = run_cli('sweep', str(changed), '--workdir', str(sweep_dir), '--no-vectorize')
  _assert_one_error_line(stale, '2 finished run(s)', 'total_steps: 20 -> 30', 'new --workdir')
  assert 'log_every' not in stale.stderr
  assert (sweep_dir / 'sweep.json').read_text() == record_before
  assert {p.name: p.stat().st_mtime_ns for p in finished.iterdir() if p.is_file()} == before
  # `research report` on one run's workdir (no sweep.json) writes that run's report instead.
  single = run_cli('report', str(finished))
  assert single.returncode == 0 and f'wrote {finished}' in single.stdout, single.stderr[-2000:]


@pytest.mark.slow
def test_seeds_and_learning_rates_train_as_one_vectorized_child(tmp_path):
  experiment = _write_experiment(
      tmp_path / 'exp.py', "axis('lr', [0.01, 0.001], key='optimizer.learning_rate')", seeds=2)
  sweep_dir = tmp_path / 'sweep'
  result = run_cli('sweep', experiment, '--workdir', str(sweep_dir))
  assert result.returncode == 0, (result.stdout, result.stderr[-2000:])
  assert '[1/1] done 4 runs of 2 points: lr=0.01; lr=0.001 (vectorized)' in result.stdout
  for lr in ('0.01', '0.001'):
    for seed in (0, 1):
      run_dir = sweep_dir / f'lr={lr},seed={seed}'
      assert json.loads((run_dir / 'summary.json').read_text())['steps'] == 20
      config = json.loads((run_dir / 'config.json').read_text())
      assert (config['optimizer']['learning_rate'], config['seed']) == (float(lr), seed)
  [group_dir] = (sweep_dir / 'groups').iterdir()
  assert group_dir.name.startswith('lr=0.01+1-more-points,')
  rerun = run_cli('sweep', experiment, '--workdir', str(sweep_dir))
  assert rerun.returncode == 0 and '4 already finished, 0 to start' in rerun.stdout


@pytest.mark.slow
def test_children_do_not_import_from_the_current_directory(tmp_path):
  """A folder in the current directory named like a dependency (a `jax` package that raises)
  reaches neither kind of child (`research train`, the vectorized group): they import what the
  parent imports, as `research train` does from the same directory."""
  cwd = tmp_path / 'cwd'
  (cwd / 'jax').mkdir(parents=True)
  (cwd / 'jax' / '__init__.py').write_text("raise ImportError('shadowed')\n")
  experiment = _write_experiment(
      tmp_path / 'exp.py', "axis('kind', {'group': {}, 'single': {'grad_accum_steps': 2}})",
      seeds=2, base=str(ROOT / 'configs' / 'default.py'))
  sweep_dir = tmp_path / 'sweep'
  script = pathlib.Path(sys.executable).with_name('research')  # The console script, as a user.
  parent = [str(script)] if script.exists() else [sys.executable, '-P', '-m', 'research']
  result = subprocess.run(
      [*parent, 'sweep', experiment, '--workdir', str(sweep_dir), '--jobs', '2'], cwd=cwd,
      env=dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1'),
      capture_output=True, text=True, timeout=600)
  logs = '\n'.join(p.read_text()[-1500:] for p in sweep_dir.rglob('train.log'))
  assert result.returncode == 0, (result.stdout, result.stderr[-2000:], logs)
  assert 'kind=group,seeds=0+1 (vectorized)' in result.stdout
  assert 'done kind=single,seed=1' in result.stdout and 'shadowed' not in logs
  for name in ('kind=group,seed=0', 'kind=group,seed=1', 'kind=single,seed=0',
               'kind=single,seed=1'):
    assert json.loads((sweep_dir / name / 'summary.json').read_text())['steps'] == 20

"""One tiny real run through the CLI, and what it leaves to see it by: its report, summary
metadata, TensorBoard files, plain progress lines and profiler trace."""
import datetime
import gzip
import json
import shutil

import pytest
from matplotlib import image

from conftest import run_cli
from research.errors import UserError
from research.reports import run_report
from research.rundir import provenance
from test_progress import CONTROL, LINE
from test_writers import read_tensorboard

# On the device-resident path (the default config's), as on the host path, the profiled steps
# run one per dispatch, so the trace holds steps 4-7 one by one.
OVERRIDES = ['total_steps=20', 'eval_every=10', 'log_every=5', 'progress_every_seconds=1000.0',
             'profile_steps=(4, 7)']


@pytest.fixture(scope='module')
def cli_run(tmp_path_factory):
  """20 steps of the default MLP on digits, evaluated every 10, through `research train` (its
  stderr is a pipe, not a terminal), tracing steps 4 to 7."""
  workdir = tmp_path_factory.mktemp('report') / 'run'
  result = run_cli('train', '--config', 'configs/default.py', '--workdir', str(workdir),
                   *(f'--config.{o}' for o in OVERRIDES))
  assert result.returncode == 0, result.stderr[-2000:]
  return workdir, result.stderr


@pytest.fixture
def run(cli_run):
  return cli_run[0]


def _summary(workdir) -> dict:
  return json.loads((workdir / 'summary.json').read_text())


@pytest.mark.slow
def test_the_report_has_valid_plots_the_final_metrics_and_the_config_changes(run):
  paths = run_report.write_run_report(run)
  assert [p.name for p in paths] == ['learning_curves.png', 'train_validation_gap.png',
                                     'report.md']
  for png in paths[:2]:
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    pixels = image.imread(png)  # Decodes: a whole, readable image.
    assert pixels.shape[0] >= 300 and pixels.shape[1] >= 500 and pixels.std() > 0
  report = paths[2].read_text()
  assert '![learning_curves](plots/learning_curves.png)' in report
  assert '![train_validation_gap](plots/train_validation_gap.png)' in report
  final = _summary(run)['final']
  for split in ('train', 'validation', 'test'):  # The headline metrics first.
    row = f"| {split} | {final[split]['accuracy']:.4g} | {final[split]['loss']:.4g} | " \
          f"{final[split]['count']} |"
    assert row in report, (row, report)
  assert f"- Result: test accuracy **{final['test']['accuracy']:.4g}**, loss " in report
  # Overrides are named as such; values the run derived from them are labelled derived.
  assert '| total_steps | – | 20 | override |' in report
  assert '| log_every | 50 | 5 | override |' in report
  assert '| num_epochs | 30 | 1 | derived |' in report
  assert 'Status: finished at step 20' in report
  commit = _summary(run)['git']['commit']
  assert (f'git commit `{commit}`' if commit else 'not in a git checkout') in report
  assert '| jax | ' in report and 'steps/s' in report


@pytest.mark.slow
def test_summary_records_host_devices_versions_git_and_times(run):
  summary = _summary(run)
  assert summary['host'] and summary['devices']['count'] == 1
  assert summary['devices']['kind'] and summary['versions']['jax']
  git = provenance.git_state(run_report.__file__)  # The repository the config file is in.
  assert summary['git'] == git
  if git['commit'] is not None:
    assert len(git['commit']) == 40 and isinstance(git['dirty'], bool)
  start = datetime.datetime.fromisoformat(summary['start_time'])
  end = datetime.datetime.fromisoformat(summary['end_time'])
  assert start.utcoffset() == datetime.timedelta(0) and start <= end
  record = json.loads((run / 'run.json').read_text())
  assert record['config_file'].endswith('configs/default.py')
  assert record['overrides'] == OVERRIDES
  # The file's defaults and the requested config, as plain JSON: a report needs no import.
  assert record['config_defaults']['total_steps'] is None
  assert record['config_defaults']['log_every'] == 50
  assert record['config_requested']['log_every'] == 5
  assert record['config_requested']['profile_steps'] == [4, 7]


def test_git_state_outside_a_checkout_is_none(tmp_path):
  assert provenance.git_state(tmp_path) == {'commit': None, 'dirty': None, 'repository': None}


@pytest.mark.slow
def test_the_run_wrote_the_same_rows_to_jsonl_and_tensorboard(run):
  rows = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
  board = read_tensorboard(run / 'tensorboard')
  assert sorted(board) == sorted((r['step'], r['split']) for r in rows)
  for row in rows:
    values = {k: v for k, v in row.items() if k not in ('step', 'split')}
    assert board[row['step'], row['split']] == pytest.approx(values, rel=1e-6)


@pytest.mark.slow
def test_an_unfinished_run_whose_config_file_is_gone_still_gets_a_report(run, tmp_path):
  copy = tmp_path / 'copy'
  shutil.copytree(run, copy, ignore=shutil.ignore_patterns('checkpoints', 'summary.json'))
  record = json.loads((copy / 'run.json').read_text())
  record['config_file'] = str(tmp_path / 'deleted.py')
  (copy / 'run.json').write_text(json.dumps(record))
  report = run_report.write_run_report(copy)[-1].read_text()
  assert 'not finished' in report and 'metrics up to step 20' in report
  # The comparison comes from run.json, whatever became of the file.
  assert f"of `{tmp_path / 'deleted.py'}` as it was when the run started" in report
  assert '| log_every | 50 | 5 | override |' in report


def _booby_trap(tmp_path):
  """A config file that leaves a marker file behind when it is imported."""
  marker, trap = tmp_path / 'imported', tmp_path / 'trap.py'
  trap.write_text(f'import pathlib\npathlib.Path({str(marker)!r}).write_text("ran")\n'
                  'def get_config(arg=None):\n  raise SystemExit(3)\n')
  return trap, marker


@pytest.mark.slow
def test_a_report_never_imports_the_config_file_its_run_json_names(run, tmp_path):
  trap, marker = _booby_trap(tmp_path)
  old, new = tmp_path / 'old', tmp_path / 'new'
  for copy, keep_defaults in ((old, False), (new, True)):
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns('checkpoints'))
    record = json.loads((copy / 'run.json').read_text())
    record['config_file'] = str(trap)
    if not keep_defaults:  # As run.json was before the defaults were recorded.
      record.pop('config_defaults', None), record.pop('config_requested', None)
    (copy / 'run.json').write_text(json.dumps(record))
  result = run_cli('report', str(old))
  assert not marker.exists()
  assert result.returncode == 0, result.stderr[-2000:]
  report = (old / 'report.md').read_text()
  assert "Not compared: this run.json predates recording the config file's defaults" in report
  assert 'Status: finished at step 20' in report
  report = run_report.write_run_report(new)[-1].read_text()
  assert not marker.exists()
  assert '| total_steps | – | 20 | override |' in report
  assert '| num_epochs | 30 | 1 | derived |' in report


def test_a_directory_without_config_json_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match="is not a run's workdir: it has no config.json"):
    run_report.write_run_report(tmp_path)


@pytest.mark.slow
def test_off_a_terminal_progress_is_clean_lines_at_each_evaluation(cli_run):
  stderr = cli_run[1]
  assert not CONTROL.search(stderr), repr(CONTROL.search(stderr))
  lines = [line for line in stderr.splitlines() if LINE.match(line)]
  # The first step and each evaluation (steps 10 and 20); the 1000 s interval never elapses.
  assert [int(LINE.match(line).group(1)) for line in lines] == [1, 10, 20]
  assert 'validation accuracy' in lines[1] and 'steps/s, ETA' in lines[2]


def _train_step_calls(trace_file) -> int:
  """Outermost training dispatches in a Perfetto trace (each appears nested twice): the host
  path's `train_step`, or the device-resident path's `train_steps` (run.dispatch)."""
  events = json.load(gzip.open(trace_file))['traceEvents']
  spans = sorted((e['ts'], e['ts'] + e['dur']) for e in events
                 if e.get('name') in ('PjitFunction(train_step)', 'PjitFunction(train_steps)')
                 and 'dur' in e)
  outermost, end = 0, -1.0
  for start, stop in spans:
    if start >= end:
      outermost, end = outermost + 1, stop
  return outermost


@pytest.mark.slow
def test_profile_steps_are_traced_into_the_workdir(run):
  traces = list((run / 'profile').glob('plugins/profile/*/perfetto_trace.json.gz'))
  assert len(traces) == 1 and list(traces[0].parent.glob('*.xplane.pb'))
  assert _train_step_calls(traces[0]) == 4  # Steps 4, 5, 6 and 7.

"""Sweep reports: mean ± std over seeds, references, missing runs, the three table formats, plots."""
import csv
import io
import json

import pytest

from conftest import run_cli
from research.errors import UserError
from research.reports import sweep_plots, sweep_tables
from research.sweeps import grid
from research.sweeps.spec import Metric, Sweep, axis, product

# Known test accuracies per (model, data, seed); the CNN on 'b' lacks seed 2 (a missing run).
ACCURACY = {('mlp', 'a'): [0.5, 0.6, 0.7], ('mlp', 'b'): [0.2, 0.2, 0.2],
            ('cnn', 'a'): [0.9, 0.8, 1.0], ('cnn', 'b'): [0.1, 0.3]}


def _fake_sweep(root):
  """A sweep directory as `research sweep` leaves it, with summaries of known values."""
  sweep = Sweep(
      name='fake', base='configs/default.py',
      grid=product(axis('model', {'mlp': {}, 'cnn': {}}), axis('data', {'a': {}, 'b': {}})),
      seeds=3, rows=('model',), columns=('data',),
      metrics=(Metric('test acc', 'final.test.accuracy', percent=True),
               Metric('steps', 'steps')),
      references={('mlp', 'a'): 0.62, ('cnn', 'b'): 0.25}, reference_name='paper')
  runs = grid.expand(sweep)
  root.mkdir()
  (root / 'sweep.json').write_text(json.dumps(grid.sweep_record(sweep, runs, 'x.py')))
  for run in runs:
    values = ACCURACY[run.labels['model'], run.labels['data']]
    if run.seed >= len(values):
      continue
    (root / run.name).mkdir()
    (root / run.name / 'summary.json').write_text(json.dumps(
        {'steps': 100 + run.seed, 'final': {'test': {'accuracy': values[run.seed]}}}))
    (root / run.name / 'metrics.jsonl').write_text(''.join(
        json.dumps({'step': s, 'split': 'validation', 'accuracy': values[run.seed] * s / 20,
                    'loss': 1 / s}) + '\n' for s in (10, 20)))
  return root


def test_cells_hold_mean_and_sample_std_over_seeds(tmp_path):
  table = sweep_tables.aggregate(_fake_sweep(tmp_path / 's'))
  assert table.row_keys == [('mlp',), ('cnn',)] and table.column_keys == [('a',), ('b',)]
  cell = table.cells[('cnn',), ('a',)]
  assert cell.values['test acc'] == [0.9, 0.8, 1.0]
  mean, std = sweep_tables.mean_std(cell.values['test acc'])
  assert mean == pytest.approx(0.9) and std == pytest.approx(0.1)  # ddof=1
  assert table.missing == ['model=cnn,data=b,seed=2']
  assert table.references == {(('mlp',), ('a',)): 0.62, (('cnn',), ('b',)): 0.25}


def test_markdown_shows_reference_difference_and_missing_runs(tmp_path):
  text = sweep_tables.markdown(sweep_tables.aggregate(_fake_sweep(tmp_path / 's')))
  rows = [[c.strip() for c in line.strip('|').split('|')]
          for line in text.splitlines() if line.startswith('|')]
  assert rows[0] == ['model', 'test acc (a)', 'paper (a)', 'difference (a)', 'steps (a)',
                     'test acc (b)', 'paper (b)', 'difference (b)', 'steps (b)']
  assert rows[2] == ['mlp', '60.0 ± 10.0', '62.0', '-2.0', '101.000 ± 1.000',
                     '20.0 ± 0.0', '—', '—', '101.000 ± 1.000']
  assert rows[3][5:8] == ['20.0 ± 14.1 (2/3 seeds)', '25.0', '-5.0']
  assert '11 of 12 runs finished' in text
  assert 'Missing runs (1): model=cnn,data=b,seed=2' in text


def test_csv_and_latex_parse_back(tmp_path):
  table = sweep_tables.aggregate(_fake_sweep(tmp_path / 's'))
  rows = list(csv.DictReader(io.StringIO(sweep_tables.csv_text(table))))
  assert len(rows) == 4
  cnn_b = next(r for r in rows if r['model'] == 'cnn' and r['data'] == 'b')
  assert cnn_b['seeds'] == '2' and float(cnn_b['paper']) == 0.25
  assert float(cnn_b['test acc mean']) == pytest.approx(0.2)
  assert float(cnn_b['test acc std']) == pytest.approx(0.1414213562)
  assert next(r for r in rows if r['model'] == 'mlp' and r['data'] == 'b')['paper'] == ''
  tex = sweep_tables.latex(table).splitlines()
  begin, end = tex.index(r'\begin{tabular}{lrrrrrrrr}'), tex.index(r'\end{tabular}')
  body = [l for l in tex[begin + 1:end] if l.endswith(r'\\')]
  assert len(body) == 3 and all(l.count('&') == 8 for l in body)
  assert body[1].startswith(r'mlp & 60.0 $\pm$ 10.0 & 62.0 & -2.0')


def test_plots_average_validation_curves_per_point(tmp_path):
  root = _fake_sweep(tmp_path / 's')
  _, runs = grid.read_record(root)
  steps, mean, std, seeds = sweep_plots.mean_curve(root, runs[9:12], 'accuracy')  # cnn, b
  assert list(steps) == [10, 20] and seeds == 2
  assert mean == pytest.approx([0.1, 0.2]) and std == pytest.approx([0.0707107, 0.1414214])
  paths = sweep_plots.plot_groups(root) + sweep_plots.plot_overview(root)
  assert sorted(p.name for p in paths) == sorted(
      [f'model={m},data={d}.png' for m in ('mlp', 'cnn') for d in ('a', 'b')] + ['overview.png'])
  assert all(p.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' for p in paths)


def test_report_cli_writes_tables_and_rejects_other_directories(tmp_path):
  root = _fake_sweep(tmp_path / 's')
  result = run_cli('report', str(root))
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith('## fake') and f'wrote {root}/report.tex' in result.stdout
  assert {'report.md', 'report.csv', 'report.tex'} <= {p.name for p in root.iterdir()}
  empty = tmp_path / 'empty'
  empty.mkdir()
  result = run_cli('report', str(empty))
  assert result.returncode == 2 and 'neither a sweep directory' in result.stderr


@pytest.mark.parametrize('value, percent, text', [
    (-0.0004, True, '+0.0'), (-0.025, True, '-2.5'), (0.01, True, '+1.0'), (-0.002, False, '-0.002')])
def test_differences_are_signed_and_never_minus_zero(value, percent, text):
  assert sweep_tables._signed(value, percent) == text


def test_loss_curves_spanning_more_than_a_decade_get_a_log_axis(tmp_path):
  root = _fake_sweep(tmp_path / 's')
  _, runs = grid.read_record(root)
  wide = [r for r in runs if r.labels == {'model': 'mlp', 'data': 'a'}]
  for run in wide:  # Loss 2.0 -> 0.02 over the run; the other points stay within 0.1 -> 0.05.
    (root / run.name / 'metrics.jsonl').write_text(''.join(
        json.dumps({'step': s, 'split': 'validation', 'accuracy': 0.5, 'loss': 2.0 / s ** 2})
        + '\n' for s in (1, 5, 10)))
  figure, plotted = sweep_plots.group_figure(root, ['accuracy', 'loss'], 'g', wide)
  accuracy, loss = figure.axes
  assert plotted and loss.get_yscale() == 'log' and accuracy.get_yscale() == 'linear'
  assert loss.get_ylabel() == 'validation loss (log scale)'
  narrow = [r for r in runs if r.labels == {'model': 'mlp', 'data': 'b'}]
  figure, _ = sweep_plots.group_figure(root, ['loss'], 'g', narrow)
  assert figure.axes[0].get_yscale() == 'linear'


def test_a_torn_metrics_line_is_skipped_and_a_damaged_summary_is_named(tmp_path):
  root = _fake_sweep(tmp_path / 's')
  _, runs = grid.read_record(root)
  with open(root / runs[0].name / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 30, "split": "valid')  # What a run killed mid-write leaves.
  steps, _, _, seeds = sweep_plots.mean_curve(root, runs[:3], 'accuracy')
  assert list(steps) == [10, 20] and seeds == 3
  (root / runs[1].name / 'summary.json').write_text('{"steps": 1')
  with pytest.raises(UserError, match=f"{runs[1].name}/summary.json is damaged"):
    sweep_tables.aggregate(root)


def test_a_report_never_imports_the_files_sweep_json_names(tmp_path):
  root = _fake_sweep(tmp_path / 's')
  marker, trap = tmp_path / 'imported', tmp_path / 'trap.py'
  trap.write_text(f'import pathlib\npathlib.Path({str(marker)!r}).write_text("ran")\n')
  record = json.loads((root / 'sweep.json').read_text())
  record['experiment'] = record['base'] = str(trap)
  for run in record['runs']:
    run['config'] = str(trap)
  (root / 'sweep.json').write_text(json.dumps(record))
  sweep_tables.write_report(root)
  assert not marker.exists()

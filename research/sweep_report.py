"""`research report DIR` for a sweep: mean ± std over seeds as Markdown, CSV and LaTeX tables, and
learning curves per grid point.

Rows and columns of the table are the sweep's axes (`Sweep.rows`, `Sweep.columns`); each cell is
the mean ± sample standard deviation (ddof=1) over the seeds found of every metric, read from each
run's summary.json. A reference value (e.g. a paper's number) sits beside the metric it is
compared with, with the difference. Runs without a summary.json are listed, and a cell with fewer
seeds than the sweep asked for shows how many it has.

Written: DIR/report.md, DIR/report.csv (one line per cell, raw numbers), DIR/report.tex (booktabs
tabular) and DIR/plots/<point>.png (validation curves against step: mean line, band of ± one std).
"""
import csv
import dataclasses
import io
import json
import math
import pathlib
from typing import Sequence

import numpy as np

from research import sweep as sweep_lib

PLOTS_DIR = 'plots'
MISSING = '—'


@dataclasses.dataclass
class Cell:
  """The runs of one table cell and their metric values (one list per metric)."""
  runs: list[str] = dataclasses.field(default_factory=list)
  values: dict[str, list[float]] = dataclasses.field(default_factory=dict)
  missing: list[str] = dataclasses.field(default_factory=list)

  @property
  def n(self) -> int:
    return len(self.runs)


@dataclasses.dataclass
class Table:
  record: dict
  row_keys: list[tuple[str, ...]]
  column_keys: list[tuple[str, ...]]
  cells: dict[tuple[tuple, tuple], Cell]
  references: dict[tuple[tuple, tuple], float]
  missing: list[str]

  @property
  def metrics(self) -> list[dict]:
    return self.record['metrics']

  def has_reference(self, column: tuple) -> bool:
    return any((row, column) in self.references for row in self.row_keys)


def _lookup(tree: dict, dotted: str) -> float | None:
  for part in dotted.split('.'):
    if not isinstance(tree, dict) or part not in tree:
      return None
    tree = tree[part]
  return float(tree) if isinstance(tree, (int, float)) else None


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
  """Mean and sample standard deviation (None with fewer than 1 / 2 values)."""
  if not values:
    return None, None
  array = np.asarray(values, dtype=np.float64)
  return float(array.mean()), (float(array.std(ddof=1)) if len(array) > 1 else None)


def aggregate(sweep_dir: str | pathlib.Path) -> Table:
  """Reads DIR/sweep.json and every run's summary.json into a table."""
  root = pathlib.Path(sweep_dir)
  record, runs = sweep_lib.read_record(root)
  rows, columns = record['rows'], record['columns']
  cells: dict[tuple[tuple, tuple], Cell] = {}
  row_keys, column_keys, missing = {}, {}, []
  for run in runs:
    row = tuple(run.labels.get(a, '') for a in rows)
    column = tuple(run.labels.get(a, '') for a in columns)
    row_keys.setdefault(row)
    column_keys.setdefault(column)
    cell = cells.setdefault((row, column), Cell())
    summary_path = root / run.name / 'summary.json'
    if not summary_path.exists():
      missing.append(run.name)
      cell.missing.append(run.name)
      continue
    summary = json.loads(summary_path.read_text())
    cell.runs.append(run.name)
    for metric in record['metrics']:
      value = _lookup(summary, metric['path'])
      if value is not None:
        cell.values.setdefault(metric['name'], []).append(value)
  references = {}
  for ref in record['references']:
    key = (tuple(ref['labels'][a] for a in rows), tuple(ref['labels'][a] for a in columns))
    references[key] = float(ref['value'])
  return Table(record, list(row_keys), list(column_keys), cells, references, missing)


def _number(value: float | None, percent: bool) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return MISSING
  return f'{100 * value:.1f}' if percent else f'{value:.3f}'


def _cell_text(table: Table, cell: Cell | None, metric: dict, pm: str) -> str:
  if cell is None or not cell.values.get(metric['name']):
    return MISSING
  mean, std = mean_std(cell.values[metric['name']])
  text = _number(mean, metric['percent'])
  if std is not None:
    text += f'{pm}{_number(std, metric["percent"])}'
  expected = table.record['seeds']
  if len(cell.values[metric['name']]) < expected:
    text += f' ({len(cell.values[metric["name"]])}/{expected} seeds)'
  return text


def _wide(table: Table, pm: str) -> tuple[list[str], list[list[str]]]:
  """Header and rows of the pivoted table: row axes, then per column key each metric (and the
  reference with the difference, beside the metric it belongs to)."""
  record = table.record
  header = list(record['rows'])
  for column in table.column_keys:
    suffix = f" ({', '.join(column)})" if column else ''
    for metric in table.metrics:
      header.append(metric['name'] + suffix)
      if metric['name'] == record['reference_metric'] and table.has_reference(column):
        header += [record['reference_name'] + suffix, 'difference' + suffix]
  body = []
  for row in table.row_keys:
    line = list(row)
    for column in table.column_keys:
      cell = table.cells.get((row, column))
      for metric in table.metrics:
        line.append(_cell_text(table, cell, metric, pm))
        if metric['name'] == record['reference_metric'] and table.has_reference(column):
          reference = table.references.get((row, column))
          mean = mean_std(cell.values.get(metric['name'], []))[0] if cell else None
          line.append(_number(reference, metric['percent']))
          line.append(MISSING if reference is None or mean is None else
                      f"{'+' if mean >= reference else '-'}"
                      f"{_number(abs(mean - reference), metric['percent'])}")
    body.append(line)
  return header, body


def _notes(table: Table) -> list[str]:
  record = table.record
  finished = len(record['runs']) - len(table.missing)
  percent = 'values in percent; ' if all(m['percent'] for m in table.metrics) else ''
  notes = [f"Mean ± sample standard deviation over {record['seeds']} seed(s) "
           f"(seeds 0..{record['seeds'] - 1}); {percent}{finished} of {len(record['runs'])} "
           "runs finished."]
  if table.missing:
    notes.append(f"Missing runs ({len(table.missing)}): " + ', '.join(table.missing))
  return notes


def markdown(table: Table) -> str:
  header, body = _wide(table, ' ± ')
  lines = [f"## {table.record['name']}", '',
           '| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
  lines += ['| ' + ' | '.join(row) + ' |' for row in body]
  return '\n'.join(lines + [''] + _notes(table)) + '\n'


def csv_text(table: Table) -> str:
  """One line per cell: axis labels, seeds found, then mean and std of each metric (raw, not
  percent), and the reference value."""
  record = table.record
  out = io.StringIO()
  writer = csv.writer(out, lineterminator='\n')
  header = list(record['rows']) + list(record['columns']) + ['seeds']
  for metric in table.metrics:
    header += [f"{metric['name']} mean", f"{metric['name']} std"]
  writer.writerow(header + [record['reference_name']])
  for row in table.row_keys:
    for column in table.column_keys:
      cell = table.cells.get((row, column))
      if cell is None:
        continue
      line = list(row) + list(column) + [cell.n]
      for metric in table.metrics:
        mean, std = mean_std(cell.values.get(metric['name'], []))
        line += ['' if mean is None else repr(mean), '' if std is None else repr(std)]
      reference = table.references.get((row, column))
      writer.writerow(line + ['' if reference is None else repr(reference)])
  return out.getvalue()


def _latex_escape(text: str) -> str:
  for char, escaped in (('\\', r'\textbackslash{}'), ('&', r'\&'), ('%', r'\%'), ('$', r'\$'),
                        ('#', r'\#'), ('_', r'\_'), ('{', r'\{'), ('}', r'\}'),
                        ('~', r'\textasciitilde{}'), ('^', r'\textasciicircum{}')):
    text = text.replace(char, escaped)
  return text.replace('±', r'$\pm$').replace('—', '--')


def latex(table: Table) -> str:
  header, body = _wide(table, ' ± ')
  spec = 'l' * len(table.record['rows']) + 'r' * (len(header) - len(table.record['rows']))
  lines = [f"% {table.record['name']}: " + ' '.join(_notes(table)[:1]),
           rf'\begin{{tabular}}{{{spec}}}', r'\toprule',
           ' & '.join(_latex_escape(h) for h in header) + r' \\', r'\midrule']
  lines += [' & '.join(_latex_escape(c) for c in row) + r' \\' for row in body]
  lines += [r'\bottomrule', r'\end{tabular}']
  return '\n'.join(lines) + '\n'


def _curves(run_dir: pathlib.Path, metric: str) -> dict[int, float]:
  path = run_dir / 'metrics.jsonl'
  if not path.exists():
    return {}
  curve = {}
  for line in path.read_text().splitlines():
    row = json.loads(line) if line.strip() else {}
    if row.get('split') == 'validation' and metric in row:
      curve[int(row['step'])] = float(row[metric])  # A resumed run rewrites a step: keep the last.
  return curve


def plot_groups(sweep_dir: str | pathlib.Path) -> list[pathlib.Path]:
  """One PNG per grid point: validation curves (mean over seeds, band of ± one std)."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(sweep_dir)
  record, runs = sweep_lib.read_record(root)
  groups: dict[str, list[sweep_lib.Run]] = {}
  for run in runs:
    groups.setdefault(run.group, []).append(run)
  (root / PLOTS_DIR).mkdir(exist_ok=True)
  written = []
  for group, members in groups.items():
    figure = Figure(figsize=(4.2 * len(record['curves']), 3.2), dpi=90, layout='constrained')
    FigureCanvasAgg(figure)
    plotted = False
    for i, metric in enumerate(record['curves']):
      ax = figure.add_subplot(1, len(record['curves']), i + 1)
      curves = [c for c in (_curves(root / r.name, metric) for r in members) if c]
      steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
      if steps:
        values = np.array([[c[s] for s in steps] for c in curves])
        mean, std = values.mean(0), values.std(0, ddof=1) if len(values) > 1 else 0 * values[0]
        ax.plot(steps, mean, label=f'mean of {len(curves)} seed(s)')
        ax.fill_between(steps, mean - std, mean + std, alpha=0.25, label='± 1 std')
        ax.legend(fontsize='small')
        plotted = True
      ax.set_xlabel('step')
      ax.set_ylabel(f'validation {metric}')
      ax.grid(alpha=0.3)
    figure.suptitle(group, fontsize='medium')
    if plotted:
      path = root / PLOTS_DIR / f'{group}.png'
      figure.savefig(path)
      written.append(path)
  return written


def write_report(sweep_dir: str | pathlib.Path) -> tuple[str, list[pathlib.Path]]:
  """Writes report.md/.csv/.tex and the plots; returns (the Markdown, the paths written)."""
  root = pathlib.Path(sweep_dir)
  table = aggregate(root)
  text = markdown(table)
  paths = []
  for name, content in (('report.md', text), ('report.csv', csv_text(table)),
                        ('report.tex', latex(table))):
    (root / name).write_text(content)
    paths.append(root / name)
  return text, paths + plot_groups(root)

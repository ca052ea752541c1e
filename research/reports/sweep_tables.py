"""`research report DIR` for a sweep: mean ± std over seeds as Markdown, CSV and LaTeX tables, and
learning curves per grid point.

Rows and columns of the table are the sweep's axes (`Sweep.rows`, `Sweep.columns`); each cell is
the mean ± sample standard deviation (ddof=1) over the seeds found of every metric, read from each
run's summary.json. A reference value (e.g. a paper's number) sits beside the metric it is
compared with, with the difference. Runs without a summary.json are listed, and a cell with fewer
seeds than the sweep asked for shows how many it has.

Only JSON is read (sweep.json, summary.json, metrics.jsonl): a report never imports the experiment
or config files that sweep.json names.

Written: DIR/report.md, DIR/report.csv (one line per cell, raw numbers), DIR/report.tex (booktabs
tabular) and the learning curves of `research.reports.sweep_plots` under DIR/plots/.
"""
import csv
import dataclasses
import io
import math
import pathlib
from typing import Sequence

import numpy as np

from research import config as config_lib
from research.reports import sweep_plots
from research.rundir import layout
from research.sweeps import grid

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


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
  """Mean and sample standard deviation (None with fewer than 1 / 2 values)."""
  if not values:
    return None, None
  array = np.asarray(values, dtype=np.float64)
  return float(array.mean()), (float(array.std(ddof=1)) if len(array) > 1 else None)


def aggregate(sweep_dir: str | pathlib.Path) -> Table:
  """Reads DIR/sweep.json and every run's summary.json into a table."""
  root = pathlib.Path(sweep_dir)
  record, runs = grid.read_record(root)
  rows, columns = record['rows'], record['columns']
  cells: dict[tuple[tuple, tuple], Cell] = {}
  row_keys, column_keys, missing = {}, {}, []
  for run in runs:
    row = tuple(run.labels.get(a, '') for a in rows)
    column = tuple(run.labels.get(a, '') for a in columns)
    row_keys.setdefault(row)
    column_keys.setdefault(column)
    cell = cells.setdefault((row, column), Cell())
    summary = layout.summary(root / run.name)  # A damaged one is a UserError naming it.
    if summary is None:
      missing.append(run.name)
      cell.missing.append(run.name)
      continue
    cell.runs.append(run.name)
    for metric in record['metrics']:
      value = config_lib.lookup(summary, metric['path'])
      if isinstance(value, (int, float)):
        cell.values.setdefault(metric['name'], []).append(float(value))
  references = {}
  for ref in record['references']:
    key = (tuple(ref['labels'][a] for a in rows), tuple(ref['labels'][a] for a in columns))
    references[key] = float(ref['value'])
  return Table(record, list(row_keys), list(column_keys), cells, references, missing)


def _number(value: float | None, percent: bool) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return MISSING
  return f'{100 * value:.1f}' if percent else f'{value:.3f}'


def _signed(value: float, percent: bool) -> str:
  """'+1.0' / '-2.5'; a difference that rounds to zero is '+0.0', never '-0.0'."""
  text = _number(abs(value), percent)
  return ('-' if value < 0 and text.strip('0.') else '+') + text


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
                      _signed(mean - reference, metric['percent']))
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


def write_report(sweep_dir: str | pathlib.Path) -> tuple[str, list[pathlib.Path]]:
  """Writes report.md/.csv/.tex and the plots; returns (the Markdown, the paths written)."""
  root = pathlib.Path(sweep_dir)
  table = aggregate(root)
  text = markdown(table)
  paths = []
  for name, content in ((layout.REPORT, text), ('report.csv', csv_text(table)),
                        ('report.tex', latex(table))):
    (root / name).write_text(content)
    paths.append(root / name)
  return text, paths + sweep_plots.plot_groups(root) + sweep_plots.plot_overview(root)

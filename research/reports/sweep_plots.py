"""Learning curves of a sweep, from each run's metrics.jsonl (validation rows), as PNG files.

    DIR/plots/<point>.png    one per grid point: each curve metric against step, the mean over
                             seeds with a band of ± one sample standard deviation
    DIR/plots/overview.png   the mean validation accuracy (first curve metric) of every point,
                             one panel per table column, one line per table row

A loss or perplexity axis is logarithmic when the plotted means span more than a decade (largest /
smallest > 10), linear otherwise, as in a run's report (`research.reports.run_plots.log_scale`); the
axis label says '(log scale)'. Drawn with matplotlib's Agg canvas directly (no pyplot, no display,
no global backend switch).
"""
import pathlib
from typing import Sequence

import numpy as np

from research.reports import run_plots
from research.rundir import layout
from research.sweeps import grid

PLOTS_DIR = 'plots'


def _curve(run_dir: pathlib.Path, metric: str) -> dict[int, float]:
  curve = {}
  for row in layout.rows(run_dir):  # A torn last line is left out; a damaged one is named.
    if row.get('split') == 'validation' and metric in row:
      curve[int(row['step'])] = float(row[metric])  # A resumed run rewrites a step: keep the last.
  return curve

def mean_curve(root: pathlib.Path, runs: Sequence[grid.Run], metric: str):
  """(steps, mean, std, seeds found) over the runs' validation curves, on the steps every run
  has; None when no run has any."""
  curves = [c for c in (_curve(root / r.name, metric) for r in runs) if c]
  steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
  if not steps:
    return None
  values = np.array([[c[s] for s in steps] for c in curves])
  std = values.std(0, ddof=1) if len(values) > 1 else np.zeros(len(steps))
  return np.array(steps), values.mean(0), std, len(curves)


def _figure(panels: int, height: float = 3.2):
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  figure = Figure(figsize=(4.2 * panels, height), dpi=90, layout='constrained')
  FigureCanvasAgg(figure)
  return figure


def _scale(ax, metric: str, means) -> str:
  """Sets a log y-axis on a loss-like panel whose means span more than a decade; returns the
  label suffix that says so."""
  if metric in run_plots.LOSS_LIKE and run_plots.log_scale([float(v) for v in means]):
    run_plots.set_log_scale(ax)
    return ' (log scale)'
  return ''


def _groups(runs: Sequence[grid.Run]) -> dict[str, list[grid.Run]]:
  groups: dict[str, list[grid.Run]] = {}
  for run in runs:
    groups.setdefault(run.group, []).append(run)
  return groups


def group_figure(root: pathlib.Path, curves: Sequence[str], group: str,
                 members: Sequence[grid.Run]):
  """(the figure of one grid point, whether it has any curve): a panel per curve metric."""
  figure, plotted = _figure(len(curves)), False
  for i, metric in enumerate(curves):
    ax = figure.add_subplot(1, len(curves), i + 1)
    curve = mean_curve(root, members, metric)
    suffix = ''
    if curve is not None:
      steps, mean, std, seeds = curve
      ax.plot(steps, mean, label=f'mean of {seeds} seed(s)')
      ax.fill_between(steps, mean - std, mean + std, alpha=0.25, label='± 1 std')
      ax.legend(fontsize='small')
      suffix = _scale(ax, metric, mean)
      plotted = True
    ax.set(xlabel='step', ylabel=f'validation {metric}{suffix}')
    ax.grid(alpha=0.3, which='both' if suffix else 'major')
  figure.suptitle(group, fontsize='medium')
  return figure, plotted


def plot_groups(sweep_dir: str | pathlib.Path) -> list[pathlib.Path]:
  """One PNG per grid point that has curves; returns the paths written."""
  root = pathlib.Path(sweep_dir)
  record, runs = grid.read_record(root)
  (root / PLOTS_DIR).mkdir(exist_ok=True)
  written = []
  for group, members in _groups(runs).items():
    figure, plotted = group_figure(root, record['curves'], group, members)
    if plotted:
      written.append(root / PLOTS_DIR / f'{group}.png')
      figure.savefig(written[-1])
  return written


def plot_overview(sweep_dir: str | pathlib.Path) -> list[pathlib.Path]:
  """Every point's mean curve of the first curve metric in one figure; [] when none has curves."""
  root = pathlib.Path(sweep_dir)
  record, runs = grid.read_record(root)
  if not record['curves']:
    return []
  metric = record['curves'][0]
  columns: dict[tuple, dict[tuple, list]] = {}
  for members in _groups(runs).values():
    labels = members[0].labels
    column = tuple(labels.get(a, '') for a in record['columns'])
    row = tuple(labels.get(a, '') for a in record['rows'])
    columns.setdefault(column, {})[row] = members
  figure, plotted = _figure(len(columns), height=4.0), False
  for i, (column, rows) in enumerate(columns.items()):
    ax = figure.add_subplot(1, len(columns), i + 1)
    means = []
    for row, members in rows.items():
      curve = mean_curve(root, members, metric)
      if curve is not None:
        ax.plot(curve[0], curve[1], label=', '.join(row) or 'all')
        means += list(curve[1])
        plotted = True
    suffix = _scale(ax, metric, means)
    ax.set(xlabel='step', ylabel=f'validation {metric} (mean over seeds){suffix}',
           title=', '.join(f'{a}={v}' for a, v in zip(record['columns'], column)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize='x-small')
  if not plotted:
    return []
  path = root / PLOTS_DIR / 'overview.png'
  figure.savefig(path)
  return [path]

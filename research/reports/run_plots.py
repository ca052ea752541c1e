"""The figures of one run's report, from its metrics.jsonl rows (and summary.json's final metrics).

`learning_curves`: one panel per headline metric of the run's task (`panels`):
  classification  loss, accuracy
  language_model  perplexity per token (exp of the loss) and, on prompted data such as `addition`,
                  the answer accuracy (teacher-forced: every answer token right) with the final
                  exact match (greedily generated answers) of validation and test as points;
                  token accuracy where the data has no prompts
  masked_lm       perplexity per hidden token, masked-token accuracy
`gap_figure`: the train-validation gap of the loss and of that accuracy, on two panels with their
own axes and units (nats and percentage points), never one axis.

Scale: a loss or perplexity axis is logarithmic when its values are all positive and span more
than a decade (largest / smallest > 10), linear otherwise; the axis label says 'log scale'.
Accuracy axes are always linear.
"""
import math
import pathlib

from matplotlib import figure, ticker

TOKEN_TASKS = ('language_model', 'masked_lm')
LOSS_LIKE = ('loss', 'perplexity')
SPLIT_STYLES = {'train': dict(color='tab:blue'), 'validation': dict(color='tab:orange', marker='o'),
                'test': dict(color='tab:green', marker='*', markersize=12, linestyle='none')}
LABELS = {'answer_accuracy': 'answer accuracy (teacher-forced)',
          'exact_match': 'exact match (generated answers)', 'top5_accuracy': 'top-5 accuracy'}


def is_token_task(task: str | None) -> bool:
  return task in TOKEN_TASKS


def with_perplexity(rows: list[dict], task: str | None) -> list[dict]:
  """Token tasks' rows with `perplexity` = exp(loss) where a row has a loss but no perplexity."""
  if not is_token_task(task):
    return rows
  return [{**r, 'perplexity': math.exp(min(r['loss'], 700.0))}
          if 'loss' in r and 'perplexity' not in r else r for r in rows]


def accuracy_metric(task: str | None, rows: list[dict]) -> str:
  """The accuracy that says how good the run is: answer accuracy on prompted language-model data,
  else `accuracy` (of examples, tokens or hidden tokens)."""
  if task == 'language_model' and any('answer_accuracy' in r for r in rows):
    return 'answer_accuracy'
  return 'accuracy'


def label(metric: str, task: str | None) -> str:
  if metric == 'accuracy':
    return {'language_model': 'token accuracy', 'masked_lm': 'masked-token accuracy'}.get(
        task, 'accuracy')
  if metric == 'perplexity':
    return 'perplexity per hidden token' if task == 'masked_lm' else 'perplexity per token'
  return LABELS.get(metric, metric)


def loss_unit(config: dict) -> str:
  """'nats per token' and the like: what one unit of the run's loss is."""
  per = 'token' if is_token_task(config.get('task')) else 'example'
  loss = config.get('loss', 'cross_entropy')
  return f'nats per {per}' if 'cross_entropy' in loss else f'{loss} per {per}'


def panels(task: str | None, rows: list[dict]) -> list[str]:
  """The metrics the learning-curve figure plots, one panel each."""
  if is_token_task(task):
    return ['perplexity', accuracy_metric(task, rows)]
  return [m for m in ('loss', 'accuracy') if any(m in r for r in rows)] or ['loss']


def log_scale(values) -> bool:
  """True when positive values span more than a decade: then a log axis shows them best."""
  values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
  return bool(values) and min(values) > 0 and max(values) / min(values) > 10


def set_log_scale(ax) -> None:
  """A log y-axis whose ticks read as plain numbers (60, not 6×10^1)."""
  ax.set_yscale('log')
  ax.yaxis.set_major_formatter(ticker.LogFormatter())
  ax.yaxis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 1)))


def series(rows: list[dict], split: str, metric: str) -> tuple[list[int], list[float]]:
  points = [(r['step'], r[metric]) for r in rows if r.get('split') == split and metric in r]
  return [s for s, _ in points], [v for _, v in points]


def exact_match_points(rows: list[dict], summary: dict | None) -> dict[str, tuple[int, float]]:
  """{split: (step, exact match)}: summary.json's final values, else the metric rows'."""
  points = {}
  for split in ('validation', 'test'):
    steps, values = series(rows, split, 'exact_match')
    if steps:
      points[split] = (steps[-1], values[-1])
  if summary is not None:
    for split, metrics in (summary.get('final') or {}).items():
      if split in ('validation', 'test') and 'exact_match' in metrics:
        points[split] = (summary.get('steps'), metrics['exact_match'])
  return points


def _axis_label(name: str, values, can_log: bool) -> tuple[str, bool]:
  use_log = can_log and log_scale(values)
  if not use_log:
    return name, False
  return (name[:-1] + ', log scale)' if name.endswith(')') else name + ' (log scale)'), True


def learning_curves(rows: list[dict], config: dict, summary: dict | None) -> figure.Figure:
  """Each headline metric against step for train, validation (and the final test point)."""
  task = config.get('task')
  rows = with_perplexity(rows, task)
  metrics = panels(task, rows)
  fig = figure.Figure(figsize=(5.5 * len(metrics), 4), layout='constrained')
  for ax, metric in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
    plotted = []
    for split, style in SPLIT_STYLES.items():
      steps, values = series(rows, split, metric)
      if steps:
        ax.plot(steps, values, label=f'{split} {label(metric, task)}', **style)
        plotted += values
    if metric not in LOSS_LIKE:
      for split, (step, value) in exact_match_points(rows, summary).items():
        ax.plot([step], [value], marker='D', markersize=8, linestyle='none',
                color=SPLIT_STYLES[split]['color'], markeredgecolor='black',
                label=f'{split} exact match (final)')
    name = label(metric, task)
    if metric == 'loss':
      name = f'loss ({loss_unit(config)})'
    ylabel, use_log = _axis_label(name, plotted, metric in LOSS_LIKE)
    if use_log:
      set_log_scale(ax)
    ax.set(xlabel='step', ylabel=ylabel, title=label(metric, task))
    ax.grid(alpha=0.3, which='both' if use_log else 'major')
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize='small')
  return fig


def gap_series(rows: list[dict], metric: str) -> tuple[list[int], list[float]]:
  """Train minus validation accuracy (validation minus train loss) at every evaluated step:
  positive means the model does better on what it trained on."""
  train = dict(zip(*series(rows, 'train', metric)))
  steps, values = [], []
  for step, value in zip(*series(rows, 'validation', metric)):
    if step in train:
      steps.append(step)
      values.append(value - train[step] if metric in LOSS_LIKE else train[step] - value)
  return steps, values


def gap_figure(rows: list[dict], config: dict) -> figure.Figure:
  """The loss gap (in the loss's units) and the accuracy gap (in percentage points), each on its
  own panel."""
  task = config.get('task')
  accuracy = accuracy_metric(task, rows)
  fig = figure.Figure(figsize=(11, 4), layout='constrained')
  loss_ax, accuracy_ax = fig.subplots(1, 2)
  for ax, metric, scale, title, unit in (
      (loss_ax, 'loss', 1.0, 'validation − train loss', loss_unit(config)),
      (accuracy_ax, accuracy, 100.0, f'train − validation {label(accuracy, task)}',
       'percentage points')):
    steps, values = gap_series(rows, metric)
    if steps:
      ax.plot(steps, [scale * v for v in values], marker='o', color='tab:purple')
    else:
      ax.text(0.5, 0.5, f'no {metric} at steps with both train and validation rows',
              ha='center', va='center', transform=ax.transAxes, fontsize='small')
    ax.axhline(0.0, color='gray', linewidth=0.8)
    ax.set(xlabel='step', ylabel=unit, title=title)
    ax.grid(alpha=0.3)
  fig.suptitle('train-validation gap (positive: better on the train data, overfitting side)',
               fontsize='medium')
  return fig


def save(fig: figure.Figure, path: pathlib.Path) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=100)  # A bare Figure renders with Agg: no display, no pyplot state.
  return path

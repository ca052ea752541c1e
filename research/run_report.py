"""The report of one run: learning-curve PNGs and `report.md`, from the files in its workdir.

`write_run_report(workdir)` reads config.json, run.json, metrics.jsonl and summary.json (a run
still going, or killed, has no summary yet: the report says so and shows what there is) and
writes `plots/learning_curves.png`, `plots/train_validation_gap.png` and `report.md`: final
metrics per split, the config's differences from its config file's defaults, wall time,
throughput, devices, package versions and the git commit. `research report WORKDIR` calls it.

Train points are the running means of each logging window (training mode: dropout on), not an
evaluation of the whole train split; the final table's train row is such an evaluation.
"""
import json
import pathlib

from matplotlib import figure

from research import config as config_lib
from research import run_metadata
from research import workdir as workdir_lib
from research.errors import UserError

CURVE_METRICS = ('loss', 'accuracy')
SPLIT_STYLES = {'train': dict(color='tab:blue'), 'validation': dict(color='tab:orange', marker='o'),
                'test': dict(color='tab:green', marker='*', markersize=12, linestyle='none')}


def _read_json(path: pathlib.Path) -> dict | None:
  return json.loads(path.read_text()) if path.is_file() else None


def _series(rows: list[dict], split: str, metric: str) -> tuple[list[int], list[float]]:
  points = [(r['step'], r[metric]) for r in rows if r['split'] == split and metric in r]
  return [s for s, _ in points], [v for _, v in points]


def plot_learning_curves(rows: list[dict], path: pathlib.Path) -> pathlib.Path:
  """Loss and accuracy against step for train, validation (and the final test point)."""
  metrics = [m for m in CURVE_METRICS if any(m in r for r in rows)] or ['loss']
  fig = figure.Figure(figsize=(5.5 * len(metrics), 4), layout='constrained')
  for ax, metric in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
    for split, style in SPLIT_STYLES.items():
      steps, values = _series(rows, split, metric)
      if steps:
        ax.plot(steps, values, label=split, **style)
    ax.set(xlabel='step', ylabel=metric, title=metric)
    ax.grid(alpha=0.3)
    ax.legend()
  return _save(fig, path)


def gap_series(rows: list[dict], metric: str) -> tuple[list[int], list[float]]:
  """Train minus validation accuracy (validation minus train loss) at every evaluated step:
  positive means the model does better on what it trained on."""
  train = dict(zip(*_series(rows, 'train', metric)))
  steps, values = [], []
  for step, value in zip(*_series(rows, 'validation', metric)):
    if step in train:
      steps.append(step)
      values.append(value - train[step] if metric == 'loss' else train[step] - value)
  return steps, values


def plot_gap(rows: list[dict], path: pathlib.Path) -> pathlib.Path:
  """The train-validation gap of each curve metric against step."""
  fig = figure.Figure(figsize=(6, 4), layout='constrained')
  ax = fig.subplots()
  for metric in CURVE_METRICS:
    steps, values = gap_series(rows, metric)
    if steps:
      label = 'validation - train loss' if metric == 'loss' else f'train - validation {metric}'
      ax.plot(steps, values, marker='o', label=label)
  ax.axhline(0.0, color='gray', linewidth=0.8)
  ax.set(xlabel='step', ylabel='gap', title='train-validation gap (positive: overfitting side)')
  ax.grid(alpha=0.3)
  if ax.get_legend_handles_labels()[0]:
    ax.legend()
  return _save(fig, path)


def _save(fig: figure.Figure, path: pathlib.Path) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=100)  # A bare Figure renders with Agg: no display, no pyplot state.
  return path


def config_differences(config: dict, source: run_metadata.ConfigSource | None
                       ) -> tuple[list[tuple[str, object, object, str]], str]:
  """(key, file default, this run, why) for every setting that differs from what the config
  file's `get_config(arg)` returns today, and a sentence saying what was compared."""
  if source is None or source.file is None:
    return [], ('The config file was not recorded (the run was started from Python, not '
                '`research train`), so there are no defaults to compare with.')
  if not pathlib.Path(source.file).is_file():
    return [], f'The config file `{source.file}` no longer exists; cannot compare with it.'
  try:
    defaults = config_lib.load(source.spec)
    requested = defaults.copy_and_resolve_references()
    config_lib.apply_overrides(requested, source.overrides)
    expected = config_lib.resolve_like(requested, config)
  except UserError as e:
    return [], f'The config file `{source.spec}` no longer loads ({e}); cannot compare with it.'
  overridden = {o.partition('=')[0] for o in source.overrides}
  unexplained = workdir_lib.flat_diff(expected, config)
  rows = []
  for key, (default, value) in workdir_lib.flat_diff(_plain(defaults), config).items():
    if key in overridden:
      why = 'override'
    elif key not in unexplained:
      why = 'derived'  # Filled in at the start (data_dir, total_steps <-> num_epochs, intervals).
    else:
      why = 'differs from the file today'  # Edited since, or changed when resuming.
    rows.append((key, default, value, why))
  return rows, f'Compared with `get_config({source.arg!r})` of `{source.file}`.'


def _plain(config) -> dict:
  """A ConfigDict as config.json holds it (tuples as lists)."""
  return json.loads(config_lib.to_json(config))


def _fmt(value) -> str:
  if isinstance(value, float):
    return f'{value:,.0f}' if abs(value) >= 1e4 else f'{value:.4g}'
  return '–' if value is None else str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(_fmt(c).replace('|', '\\|') for c in row) + ' |' for row in rows]
  return lines


def render(workdir: pathlib.Path, config: dict, rows: list[dict], summary: dict | None,
           source: run_metadata.ConfigSource | None, plots: list[pathlib.Path]) -> str:
  """The Markdown text of report.md."""
  if source is None or source.file is None:
    config_line = '- Config: not recorded'
  else:
    overrides = ' '.join(f'--config.{o}' for o in source.overrides)
    config_line = f'- Config: `{source.spec}`' + (f' with `{overrides}`' if overrides else '')
  out = [f'# Run report: {workdir.name}', '',
         f'- Workdir: `{workdir}`',
         config_line,
         f"- Model `{config['model']['name']}` on `{config['dataset']['name']}`, "
         f"{config['total_steps']} steps of batch {config['batch_size']}"]
  if summary is None:
    last = max((r['step'] for r in rows), default=0)
    out += [f'- Status: **not finished** (no summary.json; metrics up to step {last})']
  else:
    out += [f"- Status: finished at step {summary['steps']}"
            + (f", resumed from step {summary['resumed_from_step']}"
               if summary.get('resumed_from_step') else '')]
  out += ['', '## Final metrics', '']
  if summary is not None:
    final = summary['final']
    names = sorted({k for split in final.values() for k in split})
    out += _table(['split', *names], [[s, *(final[s].get(n) for n in names)] for s in final])
    gap = summary.get('train_validation_gap') or {}
    out += ['', f"Train-validation gap: accuracy {_fmt(gap.get('accuracy'))}, "
            f"loss {_fmt(gap.get('loss'))}."]
  else:
    out += ['The run has not finished: no final evaluation yet.']
  out += ['', '## Learning curves', '']
  out += [f'![{p.stem}]({p.relative_to(workdir).as_posix()})' for p in plots]
  out += ['', 'Train points are running means over each logging window (training mode); '
          'validation points evaluate the whole validation split.', '']
  differences, note = config_differences(config, source)
  out += ['## Config differences from the file\'s defaults', '', note, '']
  if differences:
    out += _table(['key', 'file default', 'this run', 'why'], differences)
  elif 'Compared' in note:
    out += ['None: the run used the file\'s defaults.']
  if summary is not None:
    out += _summary_sections(summary)
  return '\n'.join(out) + '\n'


def _summary_sections(summary: dict) -> list[str]:
  """Speed, hardware, versions and code version from summary.json (older runs lack some)."""
  out = ['', '## Speed', '']
  out += _table(['wall seconds', 'steps/s', 'examples/s', 'compile seconds'],
                [[summary.get('wall_seconds'), summary.get('steps_per_second'),
                  summary.get('examples_per_second'), summary.get('compile_seconds')]])
  devices = summary.get('devices') or {}
  out += ['', '## Where and when', '']
  out += _table(['host', 'devices', 'platform', 'parallel', 'processes', 'start (UTC)',
                 'end (UTC)'],
                [[summary.get('host'), f"{devices.get('count')} × {devices.get('kind')}",
                  devices.get('platform'), devices.get('mode'), devices.get('processes'),
                  summary.get('start_time'), summary.get('end_time')]])
  git = summary.get('git') or {}
  if git.get('commit'):
    state = 'dirty (uncommitted changes)' if git.get('dirty') else 'clean'
    out += ['', f"Code: git commit `{git['commit']}` of `{git.get('repository')}`, {state}."]
  else:
    out += ['', 'Code: not in a git checkout (no commit recorded).']
  versions = summary.get('versions') or {}
  out += ['', '## Package versions', '']
  out += _table(['package', 'version'], sorted(versions.items()))
  return out


def write_run_report(workdir: str | pathlib.Path) -> list[pathlib.Path]:
  """Writes the plots and report.md of the run in `workdir`; returns the paths written."""
  path = pathlib.Path(workdir).absolute()
  config = _read_json(path / 'config.json')
  if config is None:
    raise UserError(f"{str(path)!r} is not a run's workdir: it has no config.json")
  metrics_file = path / 'metrics.jsonl'
  rows = ([json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
          if metrics_file.is_file() else [])
  record = _read_json(path / 'run.json')
  source = run_metadata.ConfigSource.from_dict(record) if record else None
  plots = [plot_learning_curves(rows, path / 'plots' / 'learning_curves.png'),
           plot_gap(rows, path / 'plots' / 'train_validation_gap.png')]
  report = path / 'report.md'
  report.write_text(render(path, config, rows, _read_json(path / 'summary.json'), source, plots))
  return [*plots, report]

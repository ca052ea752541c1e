"""The report of one run: learning-curve PNGs and `report.md`, from the files in its workdir.

`write_run_report(workdir)` reads config.json, run.json, metrics.jsonl and summary.json (a run
still going, or killed, has no summary yet: the report says so and shows what there is) and
writes `plots/learning_curves.png`, `plots/train_validation_gap.png` (see
`research.reports.run_plots`), `plots/speech.png` for a speech run that `research transcribe
--evaluate` measured (research/reports/speech_plots.py) and `report.md`: the headline result of the run's task (exact match,
answer accuracy and perplexity for language models), final metrics per split, the config's
differences from its config file's defaults, wall time, throughput, devices, package versions and
the git commit.
`research report WORKDIR` calls it.

A report only reads: it never imports or runs anything a workdir names (a received workdir's
run.json could name any file). The config file's defaults come from run.json, recorded when the
run started; a run.json from before they were recorded gets a report without that comparison.

Train points are the running means of each logging window (training mode: dropout on), not an
evaluation of the whole train split; the final table's train row is such an evaluation.
"""
import pathlib

import ml_collections

from research import config as config_lib
from research.errors import UserError
from research.reports import run_plots, speech_plots
from research.rundir import layout, provenance

NOT_RECORDED = ("Not compared: this run.json predates recording the config file's defaults at "
                "the start of a run, and a report never imports the config file a workdir names "
                "(it could run any code).")


def config_differences(config: dict, source: provenance.ConfigSource | None
                       ) -> tuple[list[tuple[str, object, object, str]] | None, str]:
  """(key, file default, this run, why) for every setting that differs from what the config
  file's `get_config(arg)` returned when the run started (as run.json recorded it), and a
  sentence saying what was compared; None instead of the rows when nothing could be."""
  if source is None or source.file is None:
    return None, ('The config file was not recorded (the run was started from Python, not '
                  '`research train`), so there are no defaults to compare with.')
  if source.defaults is None or source.requested is None:
    return None, NOT_RECORDED
  try:
    expected = config_lib.resolve_like(ml_collections.ConfigDict(source.requested), config)
  except (UserError, KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError) as e:
    return None, f"Not compared: run.json's recorded config does not resolve ({e})."
  overridden = {o.partition('=')[0] for o in source.overrides}
  unexplained = config_lib.flat_diff(expected, config)
  rows = []
  for key, (default, value) in config_lib.flat_diff(source.defaults, config).items():
    if key in overridden:
      why = 'override'
    elif key not in unexplained:
      why = 'derived'  # Filled in at the start (data_dir, total_steps <-> num_epochs, intervals).
    else:
      why = 'not as requested'  # config.json and run.json come from different starts.
    rows.append((key, default, value, why))
  return rows, (f'Compared with `get_config({source.arg!r})` of `{source.file}` as it was when '
                'the run started (recorded in run.json; the file itself is not read).')


def _fmt(value) -> str:
  if isinstance(value, float):
    return f'{value:,.0f}' if abs(value) >= 1e4 else f'{value:.4g}'
  return '–' if value is None else str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(_fmt(c).replace('|', '\\|') for c in row) + ' |' for row in rows]
  return lines


def render(workdir: pathlib.Path, config: dict, rows: list[dict], summary: dict | None,
           source: provenance.ConfigSource | None, plots: list[pathlib.Path]) -> str:
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
    counts = summary.get('param_counts') or {}
    if counts:
      out += ['- Parameters: ' + ', '.join(f'{k} {v:,}' for k, v in counts.items())]
  task = config.get('task')
  final = {split: run_plots.with_perplexity([metrics], task)[0]
           for split, metrics in ((summary or {}).get('final') or {}).items()}
  out += _headline(task, final)
  out += ['', '## Final metrics', '']
  if final:
    first = headline_metrics(task, final)  # Then the rest, alphabetically.
    names = first + sorted({k for split in final.values() for k in split} - set(first))
    out += _table(['split', *(run_plots.label(n, task) for n in names)],
                  [[s, *(final[s].get(n) for n in names)] for s in final])
    out += _gap_line(config, final)
  else:
    out += ['The run has not finished: no final evaluation yet.']
  out += ['', '## Learning curves', '']
  out += [f'![{p.stem}]({p.relative_to(workdir).as_posix()})' for p in plots]
  out += ['', 'Train points are running means over each logging window (training mode); '
          'validation points evaluate the whole validation split. A loss or perplexity axis is '
          'logarithmic when its values span more than a decade (its label says so).', '']
  differences, note = config_differences(config, source)
  out += ['## Config differences from the file\'s defaults', '', note, '']
  if differences:
    out += _table(['key', 'file default', 'this run', 'why'], differences)
  elif differences is not None:
    out += ['None: the run used the file\'s defaults.']
  if summary is not None:
    out += _summary_sections(summary)
  return '\n'.join(out) + '\n'


def headline_metrics(task: str | None, final: dict) -> list[str]:
  """What says how good a run of `task` is: accuracy and loss for classification; exact match,
  answer accuracy and perplexity for language models (token accuracy and perplexity where the
  data has no answers to check); masked-token accuracy and perplexity for masked_lm."""
  present = {k for metrics in final.values() for k in metrics}
  if task == 'ctc':  # Speech: character and word error rates (lower is better).
    return [m for m in ('cer', 'wer', 'loss') if m in present]
  if not run_plots.is_token_task(task):
    return [m for m in ('accuracy', 'loss') if m in present]
  answers = [m for m in ('exact_match', 'answer_accuracy') if m in present]
  return answers + ['perplexity'] if answers else ['accuracy', 'perplexity']


def _headline(task: str | None, final: dict) -> list[str]:
  names = headline_metrics(task, final)
  parts = []
  for split in ('test', 'validation'):
    values = [f'{run_plots.label(n, task)} **{_fmt(final[split][n])}**'
              for n in names if n in final.get(split, {})]
    if values:
      parts.append(f"{split} {', '.join(values)}")
  return [f"- Result: {'; '.join(parts)}"] if parts else []


def _gap_line(config: dict, final: dict) -> list[str]:
  """The final evaluation's train-validation gap of the loss and of the headline accuracy."""
  train, validation = final.get('train', {}), final.get('validation', {})
  task = config.get('task')
  accuracy = run_plots.accuracy_metric(task, [train])
  parts = []
  if 'loss' in train and 'loss' in validation:
    parts.append(f"loss {_fmt(validation['loss'] - train['loss'])} "
                 f"{run_plots.loss_unit(config)} (validation − train)")
  if accuracy in train and accuracy in validation:
    parts.append(f"{run_plots.label(accuracy, task)} "
                 f"{_fmt(100 * (train[accuracy] - validation[accuracy]))} percentage points "
                 "(train − validation)")
  return ['', f"Train-validation gap: {'; '.join(parts)}."] if parts else []


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
  config = layout.config(path)
  if config is None:
    raise UserError(f"{str(path)!r} is not a run's workdir: it has no config.json")
  rows = layout.rows(path)
  record = layout.run_record(path)
  source = provenance.ConfigSource.from_dict(record) if record else None
  summary = layout.summary(path)
  plots = [run_plots.save(run_plots.learning_curves(rows, config, summary),
                          path / 'plots' / 'learning_curves.png'),
           run_plots.save(run_plots.gap_figure(rows, config),
                          path / 'plots' / 'train_validation_gap.png')]
  examples = path / 'speech' / speech_plots.EXAMPLES  # From `research transcribe --evaluate`.
  if examples.is_file():
    plots.append(run_plots.save(speech_plots.figure(examples), path / 'plots' / 'speech.png'))
  report = path / layout.REPORT
  report.write_text(render(path, config, rows, summary, source, plots))
  return [*plots, report]

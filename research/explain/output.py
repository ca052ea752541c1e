"""DIR/explain/: the figures, explain.json (every number) and summary.md (those numbers in words).

The directory is rebuilt in a temporary sibling and swapped in whole, so a reader never sees half
of an old explanation mixed with half of a new one, and a failed call leaves the old one.
"""
import json
import pathlib
import shutil
import tempfile

import numpy as np

from research.explain import attention as attention_lib
from research.explain import compute, robustness as robustness_lib
from research.reports import explain_plots
from research.rundir import layout

FILES = layout.EXPLAIN_FILES
ROWS_SHOWN = 8


def numbers(run, result: compute.Explanation, options: compute.Options, *, split: str,
            seconds: float, stats_examples: int) -> dict:
  """Everything explain.json records: what was explained, with what, and the measures."""
  record = {'model': run.config.model.name, 'task': run.config.task, 'step': run.step,
            'split': split, 'examples': len(result.inputs), 'methods': list(options.methods),
            'options': {k: v for k, v in options.__dict__.items() if k != 'methods'},
            'seconds': round(seconds, 2), 'measures': result.measures}
  if result.classes is not None:
    record['explained_classes'] = result.classes.tolist()
    record['labels'] = result.labels.tolist()
  if result.attention:
    record['attention_entropy'] = {layer: attention_lib.entropy(w).round(4).tolist()
                                   for layer, w in result.attention.items()}
  if result.layers:
    record['activations'] = {'examples': stats_examples,
                             'layers': [layer.row() for layer in result.layers]}
  if result.robustness is not None:
    record['robustness'] = result.robustness
  return record


def _row_titles(result: compute.Explanation) -> list[str]:
  if result.classes is None:
    return [f'example {i}' for i in range(len(result.inputs))]
  return [f'label {y}, explained {c}' for y, c in zip(result.labels, result.classes)]


def _attention_example(result: compute.Explanation):
  """(example index, its real length): the first example, cut at its first PAD for tokens."""
  first = result.inputs[0]
  if np.issubdtype(first.dtype, np.integer):
    length = int(np.argmax(first == 0)) if (first == 0).any() else len(first)
    return 0, max(length, 1), compute.token_labels(first[:max(length, 1)])
  size = next(iter(result.attention.values())).shape[-1]
  return 0, size, [str(i) for i in range(size)]


def _figures(directory: pathlib.Path, run, result: compute.Explanation) -> list:
  written = []
  if result.attributions:
    shown = slice(0, ROWS_SHOWN)
    fig = explain_plots.attribution_figure(
        result.inputs[shown], {m: a[shown] for m, a in result.attributions.items()},
        _row_titles(result)[:ROWS_SHOWN])
    written.append(explain_plots.save(fig, directory / FILES['attributions']))
  if result.attention:
    index, length, tokens = _attention_example(result)
    layers = {name: w[index, :, :length, :length] for name, w in result.attention.items()}
    fig = explain_plots.attention_figure(layers, result.rollout[index, :length, :length], tokens,
                                         f'{run.config.model.name}: example {index}')
    written.append(explain_plots.save(fig, directory / FILES['attention']))
  if result.layers:
    written.append(explain_plots.save(explain_plots.activation_figure(result.layers),
                                      directory / FILES['activations']))
  if result.robustness is not None:
    fig = explain_plots.robustness_figure(
        result.robustness, robustness_lib.KINDS,
        f'{run.config.model.name} on {run.config.dataset.name}: accuracy under perturbation '
        f'({result.robustness["examples"]} examples)')
    written.append(explain_plots.save(fig, directory / FILES['robustness']))
  return written


def _fmt(value) -> str:
  return '–' if value is None else f'{value:.4g}' if isinstance(value, float) else str(value)


def summary_markdown(record: dict) -> str:
  """summary.md: the run, each method's measures, activation and attention tables, robustness."""
  lines = [f"# Explanation of {record['model']} ({record['task']}) at step {record['step']}", '',
           f"{record['examples']} examples of the {record['split']!r} split; methods: "
           f"{', '.join(record['methods'])}; {record['seconds']} s.", '']
  if record['measures']:
    keys = sorted({k for m in record['measures'].values() for k in m})
    lines += ['## Attributions', '',
              'deletion: mean drop of the explained output with the top 20% positions by '
              '|attribution| set to the baseline, vs 20% at random (faithful: top > random). '
              'concentration_top10: share of |attribution| in the top 10% of positions.', '',
              '| method | ' + ' | '.join(keys) + ' |', '|---|' + '---|' * len(keys)]
    lines += [f'| {m} | ' + ' | '.join(_fmt(v.get(k)) for k in keys) + ' |'
              for m, v in record['measures'].items()]
    lines += ['', f"![attributions]({FILES['attributions']})", '']
  if 'activations' in record:
    lines += ['## Activations', '', f"Over {record['activations']['examples']} examples.", '',
              '| layer | activation | units | mean | std | dead fraction | saturated fraction |',
              '|---|---|---|---|---|---|---|']
    lines += [f"| {r['layer']} | {r['activation']} | {r['units']} | {_fmt(r['mean'])} | "
              f"{_fmt(r['std'])} | {_fmt(r['dead_fraction'])} | {_fmt(r['saturated_fraction'])} |"
              for r in record['activations']['layers']]
    lines += ['', f"![activations]({FILES['activations']})", '']
  if 'attention_entropy' in record:
    lines += ['## Attention', '', 'Mean entropy of each head\'s attention rows (nats; low: '
              'focused on few positions).', '', '| layer | entropy per head |', '|---|---|']
    lines += [f"| {layer} | {', '.join(f'{e:.3f}' for e in values)} |"
              for layer, values in record['attention_entropy'].items()]
    lines += ['', f"![attention]({FILES['attention']})", '']
  if 'robustness' in record:
    result = record['robustness']
    lines += ['## Robustness', '', f"Accuracy on {result['examples']} examples; sizes are "
              f"multiples of the inputs' std ({result['scale']:.4g}).", '',
              *robustness_lib.table(result), '', f"![robustness]({FILES['robustness']})", '']
  return '\n'.join(lines)


def write(directory: pathlib.Path, run, result: compute.Explanation, record: dict) -> list:
  """Writes the explanation into `directory` (replacing what was there); returns the paths."""
  directory.parent.mkdir(parents=True, exist_ok=True)
  staging = pathlib.Path(tempfile.mkdtemp(prefix=f'.{directory.name}-', dir=directory.parent))
  try:
    _figures(staging, run, result)
    (staging / FILES['numbers']).write_text(json.dumps(record, indent=1) + '\n')
    (staging / FILES['summary']).write_text(summary_markdown(record) + '\n')
    if directory.exists():
      shutil.rmtree(directory)
    staging.rename(directory)
  finally:
    if staging.exists():
      shutil.rmtree(staging, ignore_errors=True)
  return sorted(directory.iterdir())

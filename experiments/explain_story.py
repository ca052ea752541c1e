"""The seed's story seen through `research explain`: where attributions fall and how robust models are.

Command (from the repository root; ~10 min on 2 shared CPU cores):
  python experiments/explain_story.py --workdir workdirs/explain_story --out experiments/results/explain

Runs (seed 0, each config's own recipe, one CPU device):
  digits_relu / digits_sigmoid / digits_tanh   configs/default.py (MLP 128-64, the seed's network)
                                               with model.activation = relu / sigmoid / tanh
  mnist1d_cnn, mnist1d_mlp                     configs/mnist1d_cnn.py, configs/mnist1d_mlp.py
  mnist1d_cnn_shuffled, mnist1d_mlp_shuffled   the same on `mnist1d/shuffled` (positions permuted)
Each is trained (skipped when its summary.json exists), then `explain_workdir` writes its
DIR/explain/ with --robustness on 500 test examples; this script adds, on 200 test examples:
  background share   (digits) share of |saliency| on pixels that are blank (0): sensitivity to
                     places where the digit has no ink;
  smoothness         (MNIST-1D) lag-1 autocorrelation of |integrated gradients| along the 40
                     positions (and of |saliency|): high when attribution falls on contiguous
                     stretches of the signal; for the shuffled runs also in the ORIGINAL order
                     (attributions put back through the permutation), and the per-example rank
                     correlation of those un-permuted maps with the same architecture's on the
                     regular data (the test examples are the same signals, permuted);
  IG-input corr.     (MNIST-1D) rank correlation of |IG| with |x|: integrated gradients from a
                     zero baseline multiply by x, so part of any IG similarity is the input's.
It writes OUT/table.md, OUT/results.json, and each run's figures under OUT/<run>/.
"""
import argparse
import json
import os
import pathlib
import shutil
import time

import numpy as np

import research
from research import config as config_lib
from research.explain import attribution, compute, target
from research.data import mnist1d_builder
from research.explain import workdir as explain_workdir
from research.rundir import layout

RUNS = {
    'digits_relu': ('configs/default.py', ['model.activation=relu']),
    'digits_sigmoid': ('configs/default.py', ['model.activation=sigmoid']),
    'digits_tanh': ('configs/default.py', ['model.activation=tanh']),
    'mnist1d_cnn': ('configs/mnist1d_cnn.py', []),
    'mnist1d_mlp': ('configs/mnist1d_mlp.py', []),
    'mnist1d_cnn_shuffled': ('configs/mnist1d_cnn.py:shuffled', []),
    'mnist1d_mlp_shuffled': ('configs/mnist1d_mlp.py:shuffled', []),
}
FIGURES = ('attributions.png', 'robustness.png', 'activations.png', 'summary.md')
COLUMNS = (  # (header, how to read it from a run's results)
    ('test acc.', lambda r: r['test_accuracy']),
    ('IG top-10% share', lambda r: r['where']['ig_concentration_top10']),
    ('saliency lag-1 (orig. order)', lambda r: r['where'].get(
        'saliency_smoothness_lag1_original_order', r['where'].get('saliency_smoothness_lag1'))),
    ('saliency corr. with regular', lambda r: r['where'].get(
        'saliency_rank_correlation_with_regular')),
    ('saliency on blank px', lambda r: r['where'].get('saliency_background_share')),
    ('IG deletion top / random', lambda r: '{:.2f} / {:.2f}'.format(
        r['measures']['integrated_gradients']['deletion_drop_top'],
        r['measures']['integrated_gradients']['deletion_drop_random'])),
    ('saliency rand. corr.', lambda r: r['measures']['saliency']['randomization_rank_correlation']),
    ('dead / saturated (last hidden)', lambda r: r['activations'][-1]['dead_fraction']
     if r['activations'][-1]['dead_fraction'] is not None
     else r['activations'][-1]['saturated_fraction']),
    ('noise 1σ', lambda r: r['robustness']['noise']['accuracy'][4]),
    ('occl. 50%', lambda r: r['robustness']['occlusion']['accuracy'][3]),
    ('FGSM 0.1σ', lambda r: r['robustness']['fgsm']['accuracy'][3]),
    ('PGD 0.1σ', lambda r: r['robustness']['pgd']['accuracy'][3]),
    ('PGD 0.3σ', lambda r: r['robustness']['pgd']['accuracy'][5]),
)


def table(results: dict) -> str:
  """The Markdown table of every run (– where a measure does not apply)."""
  def cell(value):
    return '–' if value is None else f'{value:.3f}' if isinstance(value, float) else str(value)
  lines = ['| run | ' + ' | '.join(h for h, _ in COLUMNS) + ' |', '|---' * (len(COLUMNS) + 1) + '|']
  lines += [f'| {name} | ' + ' | '.join(cell(read(r)) for _, read in COLUMNS) + ' |'
            for name, r in results.items()]
  return '\n'.join(lines)


def train(spec: str, overrides: list, workdir: pathlib.Path) -> float:
  """Trains the run unless it has finished; its training wall seconds (from summary.json)."""
  if layout.summary(workdir) is None:
    config = config_lib.load(spec)
    config_lib.apply_overrides(config, overrides + ['num_devices=1'])
    research.train_and_evaluate(config, str(workdir))
  return layout.summary(workdir)['wall_seconds']


def lag1(values: np.ndarray) -> float:
  """Mean over examples of the lag-1 autocorrelation of a [n, L] array's rows."""
  out = []
  for row in values:
    a, b = row[:-1] - row.mean(), row[1:] - row.mean()
    out.append(float((a * b).sum() / max((row - row.mean()).var() * len(row), 1e-12)))
  return float(np.mean(out))


def where(run, examples: int = 200) -> tuple[dict, dict]:
  inputs, _ = run.batch('test', examples)
  classes = target.predicted_classes(run, inputs)
  options = compute.Options()
  saliency = attribution.per_position(compute.attribute(run, inputs, 'saliency', options, classes))
  ig = attribution.per_position(
      compute.attribute(run, inputs, 'integrated_gradients', options, classes))
  result = {'ig_concentration_top10': float(attribution.concentration(ig).mean()),
            'saliency_concentration_top10': float(attribution.concentration(saliency).mean())}
  if inputs.ndim == 4:
    blank = inputs[..., 0] == 0
    result['saliency_background_share'] = float(
        ((saliency * blank).reshape(len(inputs), -1).sum(1)
         / saliency.reshape(len(inputs), -1).sum(1)).mean())
  else:
    result['ig_smoothness_lag1'] = lag1(ig)
    result['saliency_smoothness_lag1'] = lag1(saliency)
    result['ig_input_rank_correlation'] = float(np.mean(
        [compute.rank_correlation(a, np.abs(x)) for a, x in zip(ig, inputs)]))
  maps = {'ig': ig, 'saliency': saliency}
  if inputs.ndim == 2 and run.config.dataset.name.endswith('shuffled'):
    for method, values in list(maps.items()):  # Shuffled position j is original order[j].
      original = np.zeros_like(values)
      original[:, mnist1d_builder.SHUFFLED_ORDER] = values
      maps[method] = original
      result[f'{method}_smoothness_lag1_original_order'] = lag1(original)
  return result, maps


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', default='workdirs/explain_story')
  parser.add_argument('--out', default='experiments/results/explain')
  args = parser.parse_args()
  root, out = pathlib.Path(args.workdir), pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  results, maps, started = {}, {}, time.perf_counter()
  for name, (spec, overrides) in RUNS.items():
    workdir = root / name
    train_seconds = train(spec, overrides, workdir)
    tic = time.perf_counter()
    numbers, _ = explain_workdir.explain_workdir(
        str(workdir), examples=8, options=compute.Options(robustness=True),
        robustness_examples=500)
    run = research.load_run(str(workdir))
    found, maps[name] = where(run)
    if name.endswith('_shuffled'):
      regular = maps[name[:-len('_shuffled')]]
      for method in ('ig', 'saliency'):
        found[f'{method}_rank_correlation_with_regular'] = float(np.mean(
            [compute.rank_correlation(a, b) for a, b in zip(maps[name][method], regular[method])]))
    results[name] = {'test_accuracy': research.evaluate_workdir(str(workdir))['accuracy'],
                     'train_wall_seconds': round(train_seconds, 1),
                     'explain_seconds': round(time.perf_counter() - tic, 1),
                     'measures': numbers['measures'], 'where': found,
                     'activations': numbers['activations']['layers'],
                     'robustness': numbers['robustness']}
    (out / name).mkdir(exist_ok=True)
    for figure in FIGURES:
      shutil.copy(workdir / 'explain' / figure, out / name / figure)
    print(name, json.dumps(results[name]['where']), flush=True)
  total = time.perf_counter() - started
  (out / 'results.json').write_text(json.dumps(
      {'runs': results, 'seconds': round(total, 1), 'load_average': os.getloadavg()},
      indent=1) + '\n')
  (out / 'table.md').write_text(table(results) + '\n')
  print(table(results))
  print(f'{total:.0f} s; load average {os.getloadavg()}')


if __name__ == '__main__':
  main()

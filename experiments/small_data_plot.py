"""Test accuracy against the share of the training split for experiments/small_data.py's sweep
(mean ± sample std over seeds), one panel per dataset, a line per (start, augmentation).

  python experiments/small_data_plot.py workdirs/small_data experiments/results/small_data

Reads only the runs' summary.json files; writes data_efficiency.png and data_efficiency.csv.
"""
import collections
import json
import pathlib
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def collect(sweep_dir: pathlib.Path) -> dict:
  """{(dataset, init, augment): {fraction: [test accuracy per seed]}}."""
  table = collections.defaultdict(lambda: collections.defaultdict(list))
  for summary in sorted(sweep_dir.glob('*/summary.json')):
    labels = dict(part.split('=', 1) for part in summary.parent.name.split(','))
    final = json.loads(summary.read_text())['final']['test']['accuracy']
    key = (labels['dataset'], labels['init'], labels['augment'])
    table[key][float(labels['fraction'])].append(final)
  return table


def main(sweep_dir: str, out_dir: str) -> None:
  table, out = collect(pathlib.Path(sweep_dir)), pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  datasets = sorted({k[0] for k in table})
  fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
  rows = ['dataset,init,augment,fraction,seeds,mean,std']
  for ax, dataset in zip(axes[0], datasets):
    for key in sorted(k for k in table if k[0] == dataset):
      fractions = sorted(table[key])
      means = [100 * np.mean(table[key][f]) for f in fractions]
      stds = [100 * np.std(table[key][f], ddof=1) if len(table[key][f]) > 1 else 0.0
              for f in fractions]
      ax.errorbar([100 * f for f in fractions], means, yerr=stds, marker='o', capsize=3,
                  label=f'{key[1]}, {key[2]}')
      rows += [f'{dataset},{key[1]},{key[2]},{f},{len(table[key][f])},{m:.2f},{s:.2f}'
               for f, m, s in zip(fractions, means, stds)]
    ax.set_xscale('log')
    ax.set_xticks([5, 10, 25, 50, 100], ['5', '10', '25', '50', '100'])
    ax.set_xlabel('% of the training split')
    ax.set_ylabel('test accuracy (%)')
    ax.set_title(dataset)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out / 'data_efficiency.png', dpi=120)
  (out / 'data_efficiency.csv').write_text('\n'.join(rows) + '\n')


if __name__ == '__main__':
  main(*sys.argv[1:3])

"""Learning from little data (issue 20): digits and MNIST-1D trained on 5, 10, 25, 50 and 100% of
their training splits, with and without augmentation; on digits also from scratch against
initialized from an MLP trained on the MNIST test set (t10k, resized to digits' 8x8). 3 seeds.

Commands (the source run reads the MNIST t10k IDX files by path; they are never committed):
  research train --config configs/default.py --workdir workdirs/mnist_source \\
      --config.dataset.name=mnist_idx --config.dataset.manual_dir=../shared/data/mnist-t10k \\
      "--config.input_resize=(8, 8)" --config.total_steps=2000
  SMALL_DATA_SOURCE=workdirs/mnist_source \\
      research sweep experiments/small_data.py --workdir workdirs/small_data --jobs 2
  research report workdirs/small_data
Without SMALL_DATA_SOURCE the sweep has no transfer rows (scratch only).

Base: configs/default.py (MLP 128-64 ReLU, Adam 1e-3, batch 64), the same 400 steps at every
fraction (a fixed compute budget; at 5% of digits that is ~200 epochs of 65 examples), the
validation and test splits unchanged. Augmentation: digits `crop:pad=1` + `affine` (±10°, ±10%
zoom, ±10% shift), no flip (digits are not mirror-symmetric); MNIST-1D the paper's `shift:max=4`
(positions), `scale:max=0.2` (time stretch) and `noise:std=0.05`.
Expected and runtime: see experiments/results/small_data/README.md.
"""
import os

from research.sweeps.spec import Metric, Sweep, axis, product

FRACTIONS = [0.05, 0.1, 0.25, 0.5, 1.0]
AUGMENT = {'digits': ('crop:pad=1', 'affine:rotate=10,scale=0.1,translate=0.1'),
           'mnist1d': ('shift:max=4', 'scale:max=0.2', 'noise:std=0.05')}


def get_sweep() -> Sweep:
  source = os.environ.get('SMALL_DATA_SOURCE')
  fraction = axis('fraction', FRACTIONS, key='dataset.train_fraction')

  def augmentation(dataset):
    return axis('augment', {'none': {'augment': ()}, 'aug': {'augment': AUGMENT[dataset]}})

  def dataset(name):
    return axis('dataset', {name: {'dataset.name': name}})

  starts = {'scratch': {}}
  if source:
    starts['mnist-t10k'] = {'init_from': os.path.abspath(source)}
  grid = [*product(dataset('digits'), axis('init', starts), augmentation('digits'), fraction),
          *product(dataset('mnist1d'), axis('init', {'scratch': {}}), augmentation('mnist1d'),
                   fraction)]
  return Sweep(
      name='small_data',
      base='configs/default.py',
      grid=grid,
      seeds=3,
      overrides={'total_steps': 400, 'eval_every': 100, 'checkpoint_every': 400,
                 'progress': 'none'},
      metrics=(Metric('test acc.', 'final.test.accuracy', percent=True),
               Metric('train acc.', 'final.train.accuracy', percent=True)),
      rows=('dataset', 'init', 'augment'), columns=('fraction',))

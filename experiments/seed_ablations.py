"""The seed document's concepts as ablations of its MLP, one factor at a time, on `digits` and
`mnist1d`: activation (ReLU / Sigmoid / Tanh), loss (cross-entropy / MSE on one-hot targets),
optimizer (SGD 0.01 as in the seed / Adam 1e-3), and width and depth against overfitting (the
train - validation accuracy gap). 3 seeds each.

Commands:
  research sweep experiments/seed_ablations.py --workdir workdirs/seed_ablations --jobs 2
  research report workdirs/seed_ablations

Base: configs/default.py (MLP 128-64, ReLU, cross-entropy, Adam 1e-3, batch 64, 30 epochs: 600
steps on digits, 1,688 on mnist1d). Each other row changes one thing from the base.
Expected (measured, test accuracy in percent): base 97.9 on digits / 58.4 on mnist1d; sigmoid
93.1 / 34.2; plain SGD 0.01 84.9 / 35.5; the MNIST-1D train-validation gap grows from 9.6 points
(32-16) to 35.2 (512-256) and 37.7 (4 layers). Full table and reading:
experiments/results/seed_ablations/README.md.
Runtime: 311 s with --jobs 2 and vectorized seeds (18 child processes for 54 runs) on 2 CPU cores
shared with other work (an upper bound).
"""
from research.sweeps.spec import Metric, Sweep, axis, one_at_a_time, product


def get_sweep() -> Sweep:
  factors = one_at_a_time(
      axis('activation', ['sigmoid', 'tanh'], key='model.activation'),
      axis('loss', ['mse'], key='loss'),
      axis('optimizer', {'SGD 0.01': {'optimizer.name': 'sgd', 'optimizer.learning_rate': 0.01}}),
      axis('width', {'32-16': {'model.hidden_sizes': (32, 16)},
                     '512-256': {'model.hidden_sizes': (512, 256)}}),
      axis('depth', {'1 layer (128)': {'model.hidden_sizes': (128,)},
                     '4 layers (128x3-64)': {'model.hidden_sizes': (128, 128, 128, 64)}}),
      base='MLP 128-64 ReLU CE Adam')
  return Sweep(
      name='seed_ablations',
      base='configs/default.py',
      grid=product(factors, axis('dataset', ['digits', 'mnist1d'], key='dataset.name')),
      seeds=3,
      metrics=(Metric('test acc.', 'final.test.accuracy', percent=True),
               Metric('train acc.', 'final.train.accuracy', percent=True),
               Metric('train - val. gap', 'train_validation_gap.accuracy', percent=True)),
      rows=('factor', 'setting'), columns=('dataset',))

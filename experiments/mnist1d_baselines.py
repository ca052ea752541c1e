"""The MNIST-1D paper's baseline table (Greydanus & Kobak, "Scaling down deep learning with
MNIST-1D", 2020/2024): logistic regression, MLP, CNN and GRU on MNIST-1D and on its variant with a
fixed random permutation of the 40 positions, 5 seeds each, the paper's test accuracies beside ours.

Commands:
  research sweep experiments/mnist1d_baselines.py --workdir workdirs/mnist1d_baselines_4k --jobs 2
  research report workdirs/mnist1d_baselines_4k

Setup: configs/mnist1d_{linear,mlp,cnn,gru}.py with the paper's recipe, Adam lr 1e-2, batch 100,
6,000 steps, 4,000 train / 1,000 test sequences; test accuracy is measured once, at the end, and
nothing is tuned on it (no early stopping, no checkpoint picking).

Training-set size (decided before running, for every model and both variants alike): the paper
trains on all 4,000 training sequences; the runner needs a validation split carved from train, so
this sweep holds out only 1% (`dataset.validation_fraction=0.01`: the last 40 sequences) and
trains on 3,960. (The data catalog would accept less, down to one sequence; 1% still leaves a
validation curve to plot.) The override is
set here, on the whole grid, not in the config files: their own default (10%, 3,600 train / 400
validation, as every other config of this repository) stays, and so do the single-run numbers in
their docstrings. 40 validation sequences make a coarse (2.5-point steps) but unused signal: it is
plotted, never used to choose anything. The earlier sweep with the configs' 10% holdout (3,600
train) is kept for comparison in the results README; its only model more than 3 points off the
paper was the shuffled-variant GRU (50.8 ± 1.8 against 57). The outcome of this sweep is reported
as it is, whichever way it goes; no other change is tried on its basis.

Expected (measured, test accuracy in percent, mean ± std over 5 seeds; paper in brackets):
  regular:  logistic regression 31.6 ± 0.7 (32), MLP 66.7 ± 0.8 (68), CNN 93.3 ± 0.7 (94),
            GRU 90.0 ± 1.7 (91)
  shuffled: logistic regression 31.4 ± 0.5 (32), MLP 66.8 ± 1.1 (68), CNN 59.7 ± 2.0 (56: 3.7
            above), GRU 52.6 ± 2.4 (57: 4.4 below, it overfits) -- six of eight within 3 points
            (with the 10% holdout: seven of eight, the shuffled GRU at 50.8 ± 1.8 the exception)
Runtime: 459 s with --jobs 2 and vectorized seeds (8 child processes), on 2 CPU cores shared
with other work (an upper bound); the 10% sweep took 400 s that way, 1,295 s with --no-vectorize.
Results: experiments/results/mnist1d_baselines/README.md.
"""
from research.sweep import Metric, Sweep, axis, product

MODELS = {'logistic regression': 'linear', 'MLP': 'mlp', 'CNN': 'cnn', 'GRU': 'gru'}
# The paper's test accuracy (its Table 1 and the shuffled variant's figure).
PAPER = {'regular': {'logistic regression': 0.32, 'MLP': 0.68, 'CNN': 0.94, 'GRU': 0.91},
         'shuffled': {'logistic regression': 0.32, 'MLP': 0.68, 'CNN': 0.56, 'GRU': 0.57}}


def get_sweep() -> Sweep:
  return Sweep(
      name='mnist1d_baselines',
      base='configs/mnist1d_mlp.py',
      grid=product(
          axis('model', {label: f'configs/mnist1d_{name}.py' for label, name in MODELS.items()}),
          axis('dataset', {'regular': {'dataset.name': 'mnist1d'},
                           'shuffled': {'dataset.name': 'mnist1d/shuffled'}})),
      seeds=5,
      # Near the paper's 4,000 training sequences: 3,960 train / 40 validation (see above).
      overrides={'dataset.validation_fraction': 0.01},
      metrics=(Metric('test accuracy', 'final.test.accuracy', percent=True),
               Metric('train accuracy', 'final.train.accuracy', percent=True)),
      rows=('model',), columns=('dataset',),
      references={(model, variant): value
                  for variant, values in PAPER.items() for model, value in values.items()},
      reference_name='paper')

"""The MNIST-1D paper's baseline table (Greydanus & Kobak, "Scaling down deep learning with
MNIST-1D", 2020/2024): logistic regression, MLP, CNN and GRU on MNIST-1D and on its variant with a
fixed random permutation of the 40 positions, 5 seeds each, the paper's test accuracies beside ours.

Commands:
  research sweep experiments/mnist1d_baselines.py --workdir workdirs/mnist1d_baselines --jobs 2
  research report workdirs/mnist1d_baselines

Setup: configs/mnist1d_{linear,mlp,cnn,gru}.py with the paper's recipe, Adam lr 1e-2, batch 100,
6,000 steps, 4,000 train / 1,000 test sequences; test accuracy is measured once, at the end, and
nothing is tuned on it (no early stopping, no checkpoint picking). Two overrides, set here on the
whole grid (the config files keep their own defaults and the single-run numbers in their
docstrings):

- `dataset.validation_fraction=0.01`: the paper trains on all 4,000 training sequences; the runner
  needs a validation split carved from train, so only the last 40 are held out (3,960 train). 40
  validation sequences are a coarse signal (2.5-point steps), plotted and never used to choose.
- `dataset.shuffle='once'`: the paper's training loop (notebooks/train.py of greydanus/mnist1d)
  cycles through the training set in one fixed order, batch `step * 100 % 4000`; 'once' cycles
  through one seeded order the same way (as a stream, so the 60 sequences past 39 full batches
  start the next pass), where the configs' default draws a new order each epoch.

The shuffled variant's permutation is the one the authors' benchmark notebook applies
(notebooks/mnist1d-classification.ipynb: `np.random.seed(42); np.random.permutation(40)`), the
notebook that draws the paper's benchmark figure; dataset version 1.1.0 (see
research/data/mnist1d_builder.py).

The GRU config's `model.weight_init='pytorch'` starts every weight and bias, the readout's too, as
the paper's PyTorch model started (research/models/gru.py).

How these were decided, in order (every intermediate table is in the results README): a first
sweep (1% holdout, a new order every epoch, the mnist1d package's own `shuffle_seq` permutation,
flax's init of the GRU's readout) put six of eight models within 3 points; it missed on the
shuffled variant only (GRU 52.6 against 57, CNN 59.7 against 56). Reading the authors' code then
showed three differences: their data order, their permutation, and the readout's initialization
(nn.Linear's uniform; ours was flax's LeCun normal, 1.7x the standard deviation, and a zero bias).
Each was adopted because it is what the authors ran, for every model and both variants, whatever
it does to the table; the data order and permutation first (one sweep, in which 'once' still
dropped the same 60 sequences every pass, a flaw fixed before the next), then the readout. Nothing
is chosen on test accuracy, and the final sweep is reported as it comes. The authors' notebook also
prints their own single run (seed 42, step 6,000): logistic regression 31.5 / 31.5 (regular /
shuffled), MLP 65.1 / 66.0, CNN 92.3 / 58.7, GRU 89.1 / 53.3: their current code does not reach
the paper's shuffled GRU (57) either.

Expected (measured, test accuracy in percent, mean ± std over 5 seeds; paper in brackets):
  regular:  logistic regression 32.0 ± 0.9 (32), MLP 66.7 ± 0.8 (68), CNN 93.4 ± 0.7 (94),
            GRU 89.1 ± 1.7 (91)
  shuffled: logistic regression 32.1 ± 0.8 (32), MLP 65.9 ± 1.4 (68), CNN 58.0 ± 1.4 (56),
            GRU 49.7 ± 2.6 (57: 7.3 below; the authors' notebook run gives 53.3) -- seven of
            eight within 3 points.
Runtime: 222 s with --jobs 2 and vectorized seeds (8 child processes) on 2 otherwise idle CPU
cores; 418 s with --no-vectorize (40 child processes), right after it.
Results, all four sweeps: experiments/results/mnist1d_baselines/README.md.
"""
from research.sweeps.spec import Metric, Sweep, axis, product

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
      # The paper's data order and (nearly) its 4,000 training sequences (see above).
      overrides={'dataset.validation_fraction': 0.01, 'dataset.shuffle': 'once'},
      metrics=(Metric('test accuracy', 'final.test.accuracy', percent=True),
               Metric('train accuracy', 'final.train.accuracy', percent=True)),
      rows=('model',), columns=('dataset',),
      references={(model, variant): value
                  for variant, values in PAPER.items() for model, value in values.items()},
      reference_name='paper')

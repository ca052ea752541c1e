"""The MNIST-1D paper's baseline table (Greydanus & Kobak, "Scaling down deep learning with
MNIST-1D", 2020/2024): logistic regression, MLP, CNN and GRU on MNIST-1D and on its variant with a
fixed random permutation of the 40 positions, 5 seeds each, the paper's test accuracies beside ours.

Commands:
  research sweep experiments/mnist1d_baselines.py --workdir workdirs/mnist1d_baselines --jobs 2
  research report workdirs/mnist1d_baselines

Setup (configs/mnist1d_{linear,mlp,cnn,gru}.py, unchanged): the paper's recipe, Adam lr 1e-2,
batch 100, 6,000 steps; 4,000 train / 1,000 test sequences, of which we hold out the last 10% of
train (400) for validation, so every model trains on 3,600. Test accuracy is measured once, at
the end; nothing is tuned on it.
Expected (measured, test accuracy in percent, mean ± std over 5 seeds; paper in brackets):
  regular:  logistic regression 31.8 ± 1.2 (32), MLP 66.7 ± 1.0 (68), CNN 91.8 ± 1.6 (94),
            GRU 90.4 ± 0.5 (91)
  shuffled: logistic regression 31.9 ± 1.3 (32), MLP 66.2 ± 0.6 (68), CNN 56.0 ± 1.6 (56),
            GRU 50.8 ± 1.8 (57: the one model more than 3 points off; see the results README)
Runtime: 400 s with --jobs 2 and vectorized seeds (8 child processes), 1,295 s with --jobs 2
--no-vectorize (40), on 2 CPU cores shared with other work (upper bounds).
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
      metrics=(Metric('test accuracy', 'final.test.accuracy', percent=True),
               Metric('train accuracy', 'final.train.accuracy', percent=True)),
      rows=('model',), columns=('dataset',),
      references={(model, variant): value
                  for variant, values in PAPER.items() for model, value in values.items()},
      reference_name='paper')

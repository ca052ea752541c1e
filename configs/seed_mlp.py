"""The seed document's experiment as written: MLP 784-128-64-10, ReLU, cross-entropy, SGD(0.01).

Commands:
  research train --config configs/seed_mlp.py --workdir workdirs/seed_mlp
      TFDS `mnist` (60,000 / 10,000), wherever it is prepared in data_dir or can be downloaded.
  research train --config configs/seed_mlp.py:dataset=mnist_idx --workdir workdirs/seed_idx
      MNIST-format IDX files read from `dataset.manual_dir` (default ../shared/data/mnist-t10k:
      the official 10,000-image MNIST test set, split 8,000 / 2,000 into train / test, with 10%
      of train carved out for validation). Override with --config.dataset.manual_dir=DIR.
  research train --config configs/seed_mlp.py:dataset=digits --workdir workdirs/seed_digits
      The same recipe on the bundled 8x8 digits (the input layer is then 64 wide).

Batch 32 (the seed does not say; a common default), 10 epochs, plain SGD with lr 0.01.
Expected (measured, seed 0): mnist_idx test accuracy 0.903 (2,250 steps); digits 0.761 (400 steps:
plain SGD at 0.01 is slow on 1,293 examples, which is the point of comparing it with Adam in
configs/default.py); full mnist ≈ 0.96-0.97 (not measured: no network here to download it).
Runtime (2 CPU cores): mnist_idx ~9 s, digits ~4 s, full mnist ~1 min, including start-up.
"""
from research import config as config_lib
from research.errors import UserError

DATASETS = ('mnist', 'mnist_idx', 'digits')


def get_config(arg=None):
  options = config_lib.parse_arg(arg, dataset='mnist')
  if options.dataset not in DATASETS:
    raise UserError(f"seed_mlp: dataset={options.dataset!r} is not one of "
                               f"{', '.join(DATASETS)}")
  config = config_lib.base()
  config.dataset.name = options.dataset
  if options.dataset == 'mnist_idx':
    config.dataset.manual_dir = '../shared/data/mnist-t10k'
  config.model.hidden_sizes = (128, 64)
  config.model.activation = 'relu'
  config.loss = 'cross_entropy'
  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 0.01
  config.batch_size = 32
  config.num_epochs = 10
  return config

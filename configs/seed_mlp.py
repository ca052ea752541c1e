"""The seed document's experiment as written: MLP 784-128-64-10, ReLU, cross-entropy, SGD(0.01).

Command (a fresh clone with network access; nothing to prepare by hand):
  research train --config configs/seed_mlp.py --workdir workdirs/seed_mlp
      MNIST's official 60,000 training images (54,000 train + the last 6,000 carved out for
      validation) and its 10,000 test images. The first run downloads the four official IDX files
      (11 MB) from the mirrors in research/data/mnist_idx_builder.py (or the base URLs in
      $RESEARCH_MNIST_MIRRORS), checks each one's SHA-256, keeps them in
      DATA_DIR/downloads/manual and prepares the `mnist_idx` dataset there once (DATA_DIR:
      --config.dataset.data_dir, else $TFDS_DATA_DIR, else ~/tensorflow_datasets). Offline, it
      stops before training (exit 2) with one line naming the files, the mirrors and the folder to
      put them in; with them there it runs without network.
  research train --config configs/seed_mlp.py --workdir workdirs/seed_t10k \
      --config.dataset.manual_dir=../shared/data/mnist-t10k
      Any directory of IDX files instead (nothing is downloaded then); e.g. only the official
      10,000-image test set, which is then split 8,000 / 2,000 into train / test (10% of train
      carved out for validation).
  research train --config configs/seed_mlp.py:dataset=digits --workdir workdirs/seed_digits
      The same recipe on the bundled 8x8 digits (the input layer is then 64 wide).
  (`:dataset=mnist` uses TFDS's own `mnist` instead, where it is already prepared in DATA_DIR as
  array_record: TFDS needs TensorFlow to prepare it.)

Batch 32 (the seed does not say; a common default), 10 epochs, plain SGD with lr 0.01.
Expected (seed 0):
  full MNIST: test accuracy ~0.97 after 16,870 steps. An estimate, not yet measured: the machines
      this project is developed on have no network (the pipeline itself was run at full size on
      60,000 + 10,000 synthetic images: 16,870 steps, 54,000 / 6,000 / 10,000 examples).
  t10k only (measured): test 0.9025, validation 0.8975, train 0.9217 after 2,250 steps.
  digits (measured): test 0.761 after 400 steps (plain SGD at 0.01 is slow on 1,293 examples,
      which is the point of comparing it with Adam in configs/default.py).
Runtime on 2 CPU cores, including start-up: full MNIST 4 min measured with the cores shared by
~10 other processes (preparing the 70,000 images, once: 1 min 47 s; training: 2 min at 360
steps/s; not yet measured on idle cores, where it is shorter), plus downloading 11 MB the first
time; t10k ~9 s on idle cores (59 s on the same loaded ones); digits ~4 s.
"""
from research import config as config_lib
from research.errors import UserError

DATASETS = ('mnist_idx', 'digits', 'mnist')


def get_config(arg=None):
  options = config_lib.parse_arg(arg, dataset='mnist_idx')
  if options.dataset not in DATASETS:
    raise UserError(f"seed_mlp: dataset={options.dataset!r} is not one of "
                    f"{', '.join(DATASETS)}")
  config = config_lib.base()
  config.dataset.name = options.dataset
  # mnist_idx without a manual_dir: the official files, fetched once into data_dir.
  config.dataset.download = options.dataset == 'mnist_idx'
  config.model.hidden_sizes = (128, 64)
  config.model.activation = 'relu'
  config.loss = 'cross_entropy'
  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 0.01
  config.batch_size = 32
  config.num_epochs = 10
  return config

"""VGG (11 or 16 layers, BatchNorm, channels scaled by 1/4) on the bundled `digits`.

Commands:
  research train --config configs/vgg_digits.py --workdir workdirs/vgg11
  research train --config configs/vgg_digits.py:depth=16 --workdir workdirs/vgg16

On 8x8 inputs the pools halve 8 → 4 → 2 → 1 and the last is skipped. Classifier 128-128 with
dropout 0.3. AdamW 1e-3 (weight decay 1e-4), warmup + cosine, batch 64, 20 epochs (400 steps).
Expected (measured): VGG-11: test accuracy 0.986 (validation 0.979, train 1.000), seed 0.
Runtime: 103 s wall for VGG-11 (400 steps at ~19 steps/s) on 2 CPU cores (load average 6.0
before, 6.9 after: the machine was shared).
"""
import ml_collections

from research import config as config_lib


def get_config(arg=None):
  options = config_lib.parse_arg(arg, depth=11)
  config = config_lib.base()
  config.dataset.name = 'digits'
  config.model = ml_collections.ConfigDict(dict(
      name='vgg', depth=options.depth, batch_norm=True, width_multiplier=0.25, hidden=128,
      dropout_rate=0.3))
  config.optimizer.name = 'adamw'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 1e-4
  config.optimizer.schedule = 'warmup_cosine'
  config.optimizer.warmup_steps = 40
  config.batch_size = 64
  config.num_epochs = 20
  return config

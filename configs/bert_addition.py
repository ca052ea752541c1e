"""BERT-style encoder on the bundled addition strings: masked-token pre-training or a classifier.

Commands:
  research train --config configs/bert_addition.py --workdir workdirs/bert_mlm
      masked-token prediction on `addition/lm` ('123+456=579'): 15% of the real tokens are
      replaced by MASK and predicted from both sides; metric: accuracy on the hidden tokens.
  research train --config configs/bert_addition.py:head=classify --workdir workdirs/bert_check
      `addition/check`: is the equation right? (half are wrong by ±d·10^k); a pooled
      classification head on the same encoder.

The model: 2 pre-LN encoder blocks, width 128, 4 heads, MLP 512, padding mask, mean pooling for
the classifier. AdamW 1e-3 (weight decay 0.01), warmup + cosine, batch 128, 3,000 steps.
Expected (measured, seed 0): masked-token test accuracy 0.510 (perplexity 3.57 on hidden
tokens); equation check test accuracy 0.740 (chance 0.5: judging a sum needs the addition).
Runtime: ~13 min (mlm) and ~6 min (classify) on 2 CPU cores shared with other work.
"""
import ml_collections

from research import config as config_lib
from research.errors import UserError

HEADS = ('mlm', 'classify')


def get_config(arg=None):
  options = config_lib.parse_arg(arg, head='mlm')
  if options.head not in HEADS:
    raise UserError(f"bert_addition: head={options.head!r} is not one of {', '.join(HEADS)}")
  config = config_lib.base()
  if options.head == 'mlm':
    config.task = 'masked_lm'
    config.dataset.name = 'addition/lm'
  else:
    config.task = 'classification'
    config.dataset.name = 'addition/check'
  config.mask_rate = 0.15
  config.model = ml_collections.ConfigDict(dict(
      name='bert', head=options.head, num_layers=2, hidden_size=128, num_heads=4, mlp_dim=512,
      dropout_rate=0.0, pool='mean', remat='none'))
  config.optimizer.name = 'adamw'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 0.01
  config.optimizer.schedule = 'warmup_cosine'
  config.optimizer.warmup_steps = 200
  config.optimizer.grad_clip_norm = 1.0
  config.batch_size = 128
  config.total_steps = 3000
  config.eval_every = 500
  return config

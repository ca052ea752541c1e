"""GPT-style decoder-only language model on the bundled integer-addition strings.

Command:
  research train --config configs/gpt_addition.py --workdir workdirs/gpt_addition

`addition`: strings '123+456=579' of byte tokens (length 16, PAD after the text), 18,000 train /
2,000 validation / 2,000 test, no operand pair shared between train and test. Next-token loss on
every real token; at the end the model greedily generates each test answer from its prompt
'123+456=' and `exact_match` counts the answers that are exactly right.
The model: 2 pre-LN decoder blocks, width 128, 4 heads, MLP 512, tied embeddings.
AdamW 1e-3 (weight decay 0.01), warmup + cosine, batch 128, 4,000 steps, clipping at norm 1.
Expected (measured, seed 0): test exact match 0.917 (validation 0.908; teacher-forced answer
accuracy on train 0.982), test perplexity 2.90 per byte.
Runtime: ~14 min on 2 CPU cores shared with other work (~5 steps/s); about half that alone.

Text sets for when they are prepared in data_dir (TFDS needs a network to download them):
  research train --config configs/gpt_addition.py:dataset=tiny_shakespeare --workdir w
  research train --config configs/gpt_addition.py:dataset=lm1b --workdir w
(byte tokens, windows of dataset.seq_len=128; no exact match there, perplexity is the metric).
"""
import ml_collections

from research import config as config_lib
from research.errors import UserError

DATASETS = ('addition', 'tiny_shakespeare', 'lm1b')


def get_config(arg=None):
  options = config_lib.parse_arg(arg, dataset='addition')
  if options.dataset not in DATASETS:
    raise UserError(f"gpt_addition: dataset={options.dataset!r} is not one of "
                    f"{', '.join(DATASETS)}")
  config = config_lib.base()
  config.task = 'language_model'
  config.dataset.name = 'addition/lm' if options.dataset == 'addition' else options.dataset
  config.dataset.seq_len = 128
  config.model = ml_collections.ConfigDict(dict(
      name='gpt', num_layers=2, hidden_size=128, num_heads=4, mlp_dim=512, dropout_rate=0.0,
      tie_embeddings=True, remat='none'))
  config.optimizer.name = 'adamw'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 0.01
  config.optimizer.schedule = 'warmup_cosine'
  config.optimizer.warmup_steps = 200
  config.optimizer.grad_clip_norm = 1.0
  config.batch_size = 128
  config.total_steps = 4000
  config.eval_every = 500
  config.early_stopping.metric = 'answer_accuracy'
  return config

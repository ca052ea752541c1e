"""What a model is trained to predict: classification, next-token or masked-token prediction,
or real-valued targets (regression: core/regression.py), or transcripts of speech (ctc:
core/ctc.py).

A task turns a data batch into model inputs and weighted targets (`prepare`); the loss and the
metrics are then the same code for all of them (`loss_and_sums`): a loss per example (classes)
or per token (language models), weighted by `weights` (zero for padding examples, padding tokens
and, for masked-token prediction, the positions that were not hidden). Metrics are
(sum, count) pairs, so they add up exactly across batches and devices.
"""
import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp

from research.core import ctc, metric_sums, regression, tokens as tokens_lib
from research.errors import UserError, unknown

TASKS = ('classification', 'language_model', 'masked_lm', 'regression', 'ctc')
# The validation-minus-train metric summary.json reports besides the loss's, by task.
GAP_METRICS = {'regression': 'rmse', 'ctc': 'cer'}


def _example_mask(batch: dict) -> jnp.ndarray:
  """1.0 for real examples; eval batches mark padding examples with mask False."""
  if 'mask' in batch:
    return batch['mask'].astype(jnp.float32)
  return jnp.ones(batch['input'].shape[:1], jnp.float32)


@dataclasses.dataclass(frozen=True)
class Task:
  name: str
  mask_rate: float = 0.15  # masked_lm: the share of non-pad tokens hidden per sequence.
  # regression: the training split's target mean and std (the dataset's `target_scale`).
  scale: regression.Scale = regression.Scale()
  alphabet: str | None = None  # ctc: the transcripts' characters (labels 1..n; 0 is blank).
  # (height, width) that image inputs are resized to (config.input_resize), in training and
  # evaluation alike; None: as they are.
  resize: tuple | None = None

  @property
  def is_token_task(self) -> bool:
    return self.name not in ('classification', 'regression', 'ctc')

  @property
  def gap_metric(self) -> str:
    """The metric whose train-validation gap summary.json reports: 'accuracy' unless the task
    names another (regression: 'rmse', validation minus train like the loss's)."""
    return GAP_METRICS.get(self.name, 'accuracy')

  def prepare(self, batch: dict, rng: jax.Array) -> tuple[jnp.ndarray, dict]:
    """Returns (model inputs, targets) with targets {'labels', 'weights', 'examples'}, and
    'soft' (the loss's targets) when augmentation mixed the batch's labels."""
    examples = _example_mask(batch)
    if self.name == 'ctc':
      return ctc.prepare(batch, examples)
    if self.resize:
      batch = dict(batch, input=resize_images(batch['input'], self.resize))
    if self.name == 'regression':
      return regression.prepare(batch, examples, self.scale)
    if self.name == 'classification':
      targets = {'labels': batch['label'], 'weights': examples, 'examples': examples}
      if 'soft_label' in batch:
        targets['soft'] = batch['soft_label']
      return batch['input'], targets
    tokens = batch['input']
    if self.name == 'language_model':
      # Every real input token predicts its successor, so the first PAD after a text is a
      # target too: it is the end-of-text marker that generation must produce to stop.
      targets = tokens[:, 1:]
      weights = (tokens[:, :-1] != tokens_lib.PAD) * examples[:, None]
      result = {'labels': targets, 'weights': weights, 'examples': examples}
      if 'prompt_length' in batch:  # Targets after the prompt: the answer of a prompted task.
        positions = jnp.arange(targets.shape[1])[None, :]
        result['answer_weights'] = weights * (positions >= batch['prompt_length'][:, None] - 1)
      return tokens[:, :-1], result
    hidden = jax.random.uniform(rng, tokens.shape) < self.mask_rate
    hidden = hidden & (tokens != tokens_lib.PAD)
    inputs = jnp.where(hidden, tokens_lib.MASK, tokens)
    return inputs, {'labels': tokens, 'weights': hidden * examples[:, None],
                    'examples': examples}

  def loss_and_sums(self, loss_fn: Callable, logits: jnp.ndarray,
                    targets: dict) -> tuple[jnp.ndarray, dict]:
    """The weighted mean loss (what is differentiated) and the metric (sum, count) pairs."""
    if self.name == 'ctc':
      return ctc.loss_and_sums(logits, targets, space=(self.alphabet or ' ').find(' ') + 1)
    if self.name == 'regression':
      return regression.loss_and_sums(loss_fn, logits, targets, self.scale)
    labels, weights = targets['labels'], targets['weights'].astype(jnp.float32)
    per_item = loss_fn(logits, targets.get('soft', labels))
    total = weights.sum()
    correct = (logits.argmax(-1) == labels).astype(jnp.float32)
    sums = {'loss': ((per_item * weights).sum(), total),
            'accuracy': ((correct * weights).sum(), total),
            'count': targets['examples'].sum()}
    if not self.is_token_task and logits.shape[-1] > 5:
      top5 = jax.lax.top_k(logits, 5)[1] == labels[..., None]
      sums['top5_accuracy'] = ((top5.any(-1) * weights).sum(), total)
    if 'answer_weights' in targets:  # Teacher-forced: every answer token right.
      answer = targets['answer_weights'].astype(jnp.float32)
      has_answer = (answer.sum(-1) > 0).astype(jnp.float32)
      all_right = ((correct * answer).sum(-1) == answer.sum(-1)) * has_answer
      sums['answer_accuracy'] = (all_right.sum(), has_answer.sum())
    return (per_item * weights).sum() / jnp.maximum(total, 1.0), sums

  def summarize(self, sums: dict) -> dict:
    """Host-side means of accumulated sums, plus perplexity for the token tasks (regression:
    mse, rmse, mae and r2 in the data's units)."""
    if self.name == 'regression':
      return regression.summarize(sums, self.scale)
    if self.name == 'ctc':
      return ctc.summarize(sums)
    out = metric_sums.means(sums)
    if self.is_token_task:
      out['perplexity'] = math.exp(min(out['loss'], 700.0))
    return out


def resize_images(images: jnp.ndarray, size: tuple) -> jnp.ndarray:
  """[B, H, W, C] images bilinearly resized (antialiased when shrinking) to [B, *size, C]."""
  return jax.image.resize(images, (images.shape[0], *size, images.shape[-1]), 'linear'
                          ).astype(images.dtype)


def resized_shape(input_shape: tuple, size) -> tuple:
  """The model's input shape after `config.input_resize`; UserError unless it is images."""
  if size is None:
    return tuple(input_shape)
  if len(input_shape) != 3 or len(size) != 2 or not all(
      isinstance(n, int) and n >= 1 for n in size):
    raise UserError(f"config.input_resize={size!r} resizes images [H, W, C] to (height, width) "
                    f"with two ints >= 1; these inputs have shape {tuple(input_shape)}")
  return (*size, input_shape[-1])


def create(config, target_scale=None, alphabet: str | None = None) -> Task:
  """The task of a config (one with `task` and `mask_rate`, as every config from base() has);
  UserError for an unknown task or a bad mask rate: the one check of these fields.
  `target_scale`: (mean, std) of the training targets, for regression (None: (0, 1));
  `alphabet`: a speech dataset's characters, for ctc."""
  name = config['task']
  if name not in TASKS:
    raise unknown('config.task', name, TASKS)
  rate = config['mask_rate']
  if not 0.0 < rate < 1.0:
    raise UserError(f"config.mask_rate must be in (0, 1), got {rate}")
  scale = regression.Scale(*map(float, target_scale)) if target_scale else regression.Scale()
  size = config['input_resize'] if 'input_resize' in config else None
  return Task(name=name, mask_rate=rate, scale=scale, resize=tuple(size) if size else None,
              alphabet=alphabet)

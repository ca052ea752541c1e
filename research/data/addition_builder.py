"""TFDS builder `addition`: integer-addition strings, generated offline, with checkable answers.

Every example is the text "{a}+{b}={c}" (e.g. "407+93=500") with `a`, `b` drawn uniformly from
[0, 10**DIGITS), stored as byte tokens (`research.core.tokens`) right-padded with PAD to SEQ_LEN.

Configs:
- `lm` (the default): `c = a + b`. Features `tokens` and `prompt_length`, the number of tokens
  of the prompt "{a}+{b}=" (so a language model's answer is `tokens[prompt_length:]` up to the
  first PAD). No label.
- `check`: half of the examples show a wrong sum, and `label` says which (1 = correct). A wrong
  sum is `c ± d * 10**k` (d in 1..9, k in 0..DIGITS-1, never negative): it differs from the
  right one in a random digit, not only in the last one, so checking the units digit is not
  enough to solve the task.

Each config has 20,000 train and 2,000 test examples over 22,000 distinct pairs; no pair is in
both splits in either order (if (a, b) is in train, neither (a, b) nor (b, a) is in test), so
test accuracy measures addition, not recall. Everything derives from one fixed seed per config.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from research.core import tokens
from research.data import local_builder

DIGITS = 3
# The longest text, "999+999=1998" (or a wrong sum up to 2898), has 12 bytes; 16 leaves a PAD
# after every answer, so a language model also learns where the answer ends.
SEQ_LEN = 16
NUM_TRAIN = 20_000
NUM_TEST = 2_000
# Changing a seed changes the data: bump VERSION if you do.
_SEEDS = {'lm': 20240601, 'check': 20240602}

_DESCRIPTION = """\
Integer addition "a+b=c" with a, b uniform in [0, 1000), as byte tokens padded to 16. Config
`lm`: correct sums and the prompt length, for language models. Config `check`: half the sums are
wrong by one digit, labelled 1 = correct / 0 = wrong, for classifiers. Train and test pairs are
disjoint (also with the operands swapped).
"""


@dataclasses.dataclass
class AdditionConfig(tfds.core.BuilderConfig):
  """`check`: show a wrong sum in half of the examples and label them."""
  check: bool = False


def text(a: int, b: int, c: int) -> str:
  """The text of one example, "{a}+{b}={c}"."""
  return f'{a}+{b}={c}'


def prompt_length(a: int, b: int) -> int:
  """Tokens before the answer: len("{a}+{b}=")."""
  return len(f'{a}+{b}=')


def make_pairs(seed: int) -> dict[str, np.ndarray]:
  """Returns {'train': int64 [NUM_TRAIN, 2], 'test': int64 [NUM_TEST, 2]} operand pairs.

  All pairs are distinct, and no test pair is a train pair with or without its operands swapped.
  """
  high = 10**DIGITS
  rng = np.random.default_rng(seed)
  # A few spare pairs: test pairs whose swap is in train are skipped.
  codes = rng.choice(high * high, size=NUM_TRAIN + 2 * NUM_TEST, replace=False)
  pairs = np.stack([codes // high, codes % high], axis=1)
  train = pairs[:NUM_TRAIN]
  train_codes = set(codes[:NUM_TRAIN].tolist())
  rest = pairs[NUM_TRAIN:]
  swapped = rest[:, 1] * high + rest[:, 0]
  ok = np.array([s not in train_codes for s in swapped.tolist()])
  test = rest[ok][:NUM_TEST]
  assert len(test) == NUM_TEST, 'not enough spare pairs'
  return {'train': train, 'test': test}


def make_examples(pairs: np.ndarray, check: bool, rng: np.random.Generator) -> dict:
  """Returns {'tokens', 'prompt_length', 'shown_sum'[, 'label']} arrays for `pairs`.

  With `check`, exactly half of the examples (a random half) get a wrong sum.
  """
  a, b = pairs[:, 0], pairs[:, 1]
  shown = a + b
  out = {}
  if check:
    n = len(pairs)
    label = rng.permutation(np.arange(n) < (n + 1) // 2).astype(np.int64)
    offset = rng.integers(1, 10, n) * 10**rng.integers(0, DIGITS, n)
    sign = np.where(rng.random(n) < 0.5, -1, 1)
    sign = np.where(shown - offset < 0, 1, sign)  # Never a negative sum.
    shown = np.where(label == 1, shown, shown + sign * offset)
    out['label'] = label
  texts = [text(x, y, z) for x, y, z in zip(a.tolist(), b.tolist(), shown.tolist())]
  out['tokens'] = np.stack([tokens.encode(t, SEQ_LEN) for t in texts]).astype(np.uint8)
  out['prompt_length'] = np.array([prompt_length(x, y) for x, y in zip(a.tolist(), b.tolist())],
                                  np.int32)
  out['shown_sum'] = shown
  return out


class Addition(local_builder.LocalBuilder):
  """Integer addition as byte tokens, configs `lm` (default) and `check`."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: 3-digit operands, SEQ_LEN 16, 20,000 train / 2,000 test with '
               'disjoint pairs; `check` wrong sums off by one digit.',
  }
  BUILDER_CONFIGS = [
      AdditionConfig(name='lm', check=False,
                     description='Correct sums and prompt lengths, for language models.'),
      AdditionConfig(name='check', check=True,
                     description='Half the sums wrong in one digit; label 1 = correct.'),
  ]
  DEFAULT_CONFIG_NAME = 'lm'

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
        'tokens': tfds.features.Tensor(shape=(SEQ_LEN,), dtype=np.uint8),
        'prompt_length': tfds.features.Scalar(dtype=np.int32),
    }
    if self.builder_config.check:
      features['label'] = tfds.features.ClassLabel(names=['wrong', 'correct'])
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict(features),
        supervised_keys=('tokens', 'label') if self.builder_config.check else None,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Generated, not downloaded.
    seed = _SEEDS[self.builder_config.name]
    pairs = make_pairs(seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    return {split: self._generate_examples(make_examples(pairs[split], self.builder_config.check,
                                                         rng))
            for split in ('train', 'test')}

  def _generate_examples(self, examples):
    keys = ['tokens', 'prompt_length'] + (['label'] if 'label' in examples else [])
    for i in range(len(examples['tokens'])):
      yield i, {k: examples[k][i] for k in keys}

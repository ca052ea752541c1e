"""How raw TFDS examples become model input, for each kind of input.

Kinds of input (`Preprocessing.kind`):

  dense    `float32(example[feature]) / divisor`, a fixed shape: images, 1-D signals.
  audio    like dense, but a variable-length waveform is cut, or padded with zeros, to
           `dataset.audio_length` samples (default 16,000); a fixed-length one is kept as is.
  tokens   int32 byte tokens that the builder stores in `feature` (fixed length, PAD=0), with
           the builder's `prompt_length` when it has one (e.g. `addition`).
  text     a string feature, byte-encoded (`research.core.tokens`) and cut or padded with PAD to
           `dataset.seq_len` tokens (default 128): one example per record (lm1b).
  windows  the bytes of all texts of a split, concatenated and cut into consecutive windows of
           `dataset.seq_len` tokens, one example per window; the remainder is dropped. For
           corpora of a few long texts (tiny_shakespeare), where one example per record would
           keep only the first `seq_len` bytes of each.
  series   one real value per record, in time order: forecasting windows (research/data/series.py)
           of `dataset.context_length` standardized past values -> the next `dataset.horizon`
           values, as a real-valued 'target'.
  speech   a waveform and its transcript, for CTC (research/data/speech_encoding.py).

A rule with a `target` feature (e.g. `diabetes`) gives batches a float32 'target' (any fixed
shape) instead of a class 'label': data for the regression task.

Batches of token kinds are {'input': int32 [B, L], 'prompt_length': int32 [B]} (zeros where the
dataset has no prompt), plus 'label' int32 [B] when the dataset has a class label. Batches of
the other kinds are {'input': float32 [B, ...], 'label': int32 [B]}.

The bytes of an example as held in memory (`Encoding.stack`) stay in the stored dtype (uint8
pixels and tokens, int16 audio); `Encoding.batch` converts a gathered batch.
"""
import dataclasses
import math
import numbers
from typing import Sequence

import numpy as np
import tensorflow_datasets as tfds

from research import errors
from research.config import schema
from research.core import tokens
from research.data import speech_encoding

KINDS = ('dense', 'audio', 'tokens', 'text', 'windows', 'series', 'speech')
TOKEN_KINDS = ('tokens', 'text', 'windows')
DEFAULT_SEQ_LEN = 128
DEFAULT_AUDIO_LENGTH = 16_000
_SERIES = schema.DATASET_FIELDS  # context_length, horizon, stride: their one default.
# A text dataset without a rule in PREPROCESSING and without labels is cut into windows when its
# records average more than this many stored bytes (long documents, not sentences).
WINDOWS_MIN_AVERAGE_BYTES = 16 * 1024


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """A rule: read `feature` as input of `kind`; dense and audio inputs are divided by `divisor`.

  `divisor=None` means 255 for uint8 features (pixels), 2**(bits-1) for integer audio (PCM)
  and 1 for anything else. `target`: a real-valued feature to predict (regression), if any.
  """
  feature: str = 'image'
  divisor: float | None = None
  kind: str = 'dense'
  target: str = ''


# Rules by TFDS builder name. Builders not listed here get one from their features (see
# `_default_rule`): `image` dense, `tokens` tokens, `text` text or windows, `audio` audio.
PREPROCESSING = {
    'digits': Preprocessing(feature='image', divisor=16.0),  # 4-bit pixel counts, 0..16.
    'mnist1d': Preprocessing(feature='x', divisor=1.0),  # Already standardized by the generator.
    'addition': Preprocessing(feature='tokens', kind='tokens'),
    'tones': Preprocessing(feature='audio', divisor=1.0, kind='audio'),
    'speech_commands': Preprocessing(feature='audio', divisor=32768.0, kind='audio'),  # int16.
    'lm1b': Preprocessing(feature='text', kind='text'),
    'tiny_shakespeare': Preprocessing(feature='text', kind='windows'),
    'diabetes': Preprocessing(feature='features', divisor=1.0, target='target'),
    'sunspots': Preprocessing(feature='value', divisor=1.0, kind='series'),
    'stocks': Preprocessing(feature='value', divisor=1.0, kind='series'),
    'speech': Preprocessing(feature='audio', kind='speech'),
    'librispeech': Preprocessing(feature='speech', kind='speech'),
}


@dataclasses.dataclass(frozen=True)
class Encoding:
  """A dataset's resolved preprocessing: what to read, and the shape and dtype it becomes.

  Attributes:
    kind: one of KINDS.
    feature: the TFDS feature read as input.
    divisor: dense and audio inputs are divided by it.
    input_shape: one example's model input shape, e.g. (8, 8, 1), (1024,) or (seq_len,).
    stored_dtype: the dtype in which an example's input is held in memory.
    has_label: whether batches carry 'label' (the dataset has a ClassLabel 'label').
    has_prompt_length: whether the records carry 'prompt_length' (else batches get zeros).
    target: the real-valued feature batches carry as 'target' ('' for none).
    target_shape: one example's target shape, () for a scalar; None without a target.
  """
  kind: str
  feature: str
  divisor: float
  input_shape: tuple
  stored_dtype: np.dtype
  has_label: bool
  has_prompt_length: bool = False
  target: str = ''
  target_shape: tuple | None = None
  speech: speech_encoding.SpeechSpec | None = None  # Kind 'speech': alphabet, rate, lengths.

  @property
  def has_target(self) -> bool:
    return self.target_shape is not None

  @property
  def is_tokens(self) -> bool:
    return self.kind in TOKEN_KINDS

  @property
  def input_dtype(self) -> str:
    return 'int32' if self.is_tokens else 'float32'

  @property
  def vocab_size(self) -> int | None:
    return tokens.VOCAB_SIZE if self.is_tokens else None

  @property
  def example_bytes(self) -> int:
    return math.prod(self.input_shape) * np.dtype(self.stored_dtype).itemsize

  def stack(self, examples: Sequence[dict]) -> dict[str, np.ndarray]:
    """Decoded TFDS examples -> {'input': stored_dtype [n, ...], 'label'?, 'prompt_length'?}."""
    if self.kind == 'speech':
      return speech_encoding.stack(self, examples)
    if self.kind == 'text':
      inputs = np.stack([_byte_tokens(e[self.feature], self.input_shape[0]) for e in examples])
    elif self.kind == 'audio':
      inputs = np.stack([_fit_length(np.asarray(e[self.feature]), self.input_shape[0])
                         for e in examples])
    else:
      inputs = np.stack([np.asarray(e[self.feature]) for e in examples])
    raw = {'input': inputs.astype(self.stored_dtype, copy=False)}
    if self.has_label:
      raw['label'] = np.asarray([e['label'] for e in examples], np.int64)
    if self.has_prompt_length:
      raw['prompt_length'] = np.asarray([e['prompt_length'] for e in examples], np.int32)
    if self.has_target:
      raw['target'] = np.stack([np.asarray(e[self.target], np.float32) for e in examples])
    return raw

  def batch(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Stored arrays of a batch (as from `stack`) -> the model's batch (see the module doc)."""
    n = len(raw['input'])
    if self.kind == 'speech':
      return speech_encoding.batch(self, raw)
    if self.is_tokens:
      out = {'input': raw['input'].astype(np.int32)}
    else:
      inputs = raw['input'].astype(np.float32)
      if self.divisor != 1:
        inputs /= np.float32(self.divisor)
      out = {'input': inputs}
    if self.has_label:
      out['label'] = raw['label'].astype(np.int32)
    if self.has_target:
      out['target'] = raw['target'].astype(np.float32)
    if self.is_tokens:
      out['prompt_length'] = (raw['prompt_length'].astype(np.int32) if self.has_prompt_length
                              else np.zeros((n,), np.int32))
    return out

  def empty(self, batch_size: int) -> dict[str, np.ndarray]:
    """A batch of zeros (PAD tokens, zero labels) in the model's dtypes: eval padding."""
    if self.kind == 'speech':
      return speech_encoding.empty(self, batch_size)
    raw = {'input': np.zeros((batch_size, *self.input_shape), self.stored_dtype),
           'label': np.zeros((batch_size,), np.int64),
           'prompt_length': np.zeros((batch_size,), np.int32)}
    if self.has_target:
      raw['target'] = np.zeros((batch_size, *self.target_shape), np.float32)
    return self.batch(raw)


def _byte_tokens(text, length: int) -> np.ndarray:
  """UTF-8 bytes of `text` (str or bytes) as uint8 tokens, cut or padded with PAD to `length`."""
  data = text.encode('utf-8') if isinstance(text, str) else bytes(text)
  out = np.full((length,), tokens.PAD, np.uint8)
  data = np.frombuffer(data[:length], np.uint8)
  out[:len(data)] = data
  return out


def _fit_length(waveform: np.ndarray, length: int) -> np.ndarray:
  """The first `length` samples of `waveform` [n] or [n, channels], padded with zeros."""
  if waveform.ndim == 2:  # Several channels: their mean.
    waveform = waveform.mean(axis=1).astype(waveform.dtype)
  out = np.zeros((length,), waveform.dtype)
  out[:min(length, len(waveform))] = waveform[:length]
  return out


def positive_int(dataset_cfg, key: str, default: int) -> int:
  """`dataset_cfg.<key>` (default when absent or None); UserError unless a positive integer."""
  value = getattr(dataset_cfg, key, None)
  value = default if value is None else value
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
    raise errors.UserError(f'dataset.{key} must be a positive integer, got {value!r}')
  return int(value)


def _default_rule(name: str, builder) -> Preprocessing:
  """The rule for a builder not in PREPROCESSING, from the names of its features."""
  features = builder.info.features
  if 'image' in features:
    return Preprocessing()
  if 'tokens' in features:
    return Preprocessing(feature='tokens', kind='tokens')
  if 'text' in features:
    train = builder.info.splits['train'] if 'train' in builder.info.splits else None
    average = int(train.num_bytes) / max(1, int(train.num_examples)) if train else 0
    long_texts = average > WINDOWS_MIN_AVERAGE_BYTES and 'label' not in features
    return Preprocessing(feature='text', kind='windows' if long_texts else 'text')
  if 'audio' in features:
    return Preprocessing(feature='audio', kind='audio')
  if sorted(features.keys()) == ['time', 'value']:  # One value per time step: a series.
    return Preprocessing(feature='value', divisor=1.0, kind='series')
  raise errors.UserError(
      f'dataset {name!r} has features {sorted(features.keys())}; this pipeline reads one of '
      "'image' (or another fixed-shape array, with a rule in data.encoding.PREPROCESSING), "
      "'tokens', 'text' or 'audio'")


def resolve(name: str, builder, dataset_cfg) -> Encoding:
  """Returns the `Encoding` of the builder's dataset; UserError for features it cannot use."""
  rule = PREPROCESSING.get(builder.name) or _default_rule(name, builder)
  if rule.kind == 'speech':
    shape, dtype, divisor, spec = speech_encoding.resolve(name, builder, dataset_cfg,
                                                          rule.feature, positive_int)
    return Encoding(kind='speech', feature=rule.feature, divisor=divisor, input_shape=shape,
                    stored_dtype=dtype, has_label=False, speech=spec)
  features = builder.info.features
  keys = sorted(features.keys())
  has_label = 'label' in keys
  unlabelled = rule.kind in TOKEN_KINDS or rule.kind == 'series' or rule.target
  if rule.feature not in keys or (not has_label and not unlabelled):
    label = '' if unlabelled else ' and a class label \'label\''
    raise errors.UserError(f'dataset {name!r} has features {keys}; this pipeline needs '
                           f'{rule.feature!r}{label}')
  if has_label and not isinstance(features['label'], tfds.features.ClassLabel):
    raise errors.UserError(f'dataset {name!r}: feature \'label\' is not a class label')
  feature = features[rule.feature]
  shape = tuple(feature.shape)
  dtype = np.dtype(feature.np_dtype)
  if rule.kind in ('text', 'windows'):
    if not isinstance(feature, tfds.features.Text) and dtype.kind not in 'SOU':
      raise errors.UserError(f'dataset {name!r}: feature {rule.feature!r} is not text')
    shape = (positive_int(dataset_cfg, 'seq_len', DEFAULT_SEQ_LEN),)
    dtype = np.dtype(np.uint8)  # Bytes.
    if rule.kind == 'windows' and has_label:
      raise errors.UserError(f'dataset {name!r}: its texts are cut into windows, which would '
                             'lose their labels')
  elif rule.kind == 'series':  # Windows of the series: see research/data/series.py.
    if shape or dtype.kind != 'f':
      raise errors.UserError(f'dataset {name!r}: feature {rule.feature!r} ({dtype} {shape}) is '
                             'not one real value per time step')
    shape = (positive_int(dataset_cfg, 'context_length', _SERIES['context_length']),)
  elif rule.kind == 'audio':
    if len(shape) not in (1, 2) or any(d is None for d in shape[1:]):
      raise errors.UserError(f'dataset {name!r}: feature {rule.feature!r} of shape {shape} is '
                             'not a waveform [samples] or [samples, channels]')
    # Channels are averaged; a variable length is cut or padded to dataset.audio_length.
    shape = (shape[0] if shape[0] is not None else
             positive_int(dataset_cfg, 'audio_length', DEFAULT_AUDIO_LENGTH),)
  if any(d is None for d in shape):
    raise errors.UserError(f'dataset {name!r}: feature {rule.feature!r} has variable shape '
                           f'{shape}; this pipeline needs fixed-size inputs')
  if rule.kind == 'tokens' and (len(shape) != 1 or dtype.kind not in 'iu'):
    raise errors.UserError(f'dataset {name!r}: feature {rule.feature!r} ({dtype} {shape}) is '
                           'not a sequence of integer tokens')
  divisor = rule.divisor
  if divisor is None and rule.kind == 'audio' and dtype.kind == 'i':
    divisor = float(np.iinfo(dtype).max) + 1  # Integer PCM to [-1, 1).
  elif divisor is None:
    divisor = 255.0 if dtype == np.uint8 and rule.kind not in TOKEN_KINDS else 1.0
  return Encoding(kind=rule.kind, feature=rule.feature, divisor=float(divisor),
                  input_shape=shape, stored_dtype=dtype, has_label=has_label,
                  has_prompt_length=rule.kind == 'tokens' and 'prompt_length' in keys,
                  target=rule.target or (rule.feature if rule.kind == 'series' else ''),
                  target_shape=_target_shape(name, rule, features, dataset_cfg))


def _target_shape(name: str, rule: Preprocessing, features, dataset_cfg) -> tuple | None:
  """A real-valued target's shape: a series' `dataset.horizon` values, a `target` feature's own
  shape; None for datasets without one."""
  if rule.kind == 'series':
    return (positive_int(dataset_cfg, 'horizon', _SERIES['horizon']),)
  if not rule.target:
    return None
  if rule.target not in features or np.dtype(features[rule.target].np_dtype).kind != 'f':
    raise errors.UserError(f'dataset {name!r} has no real-valued feature {rule.target!r} to '
                           f'predict (features: {sorted(features.keys())})')
  shape = tuple(features[rule.target].shape)
  if any(d is None for d in shape):
    raise errors.UserError(f'dataset {name!r}: target {rule.target!r} has variable shape {shape}')
  return shape

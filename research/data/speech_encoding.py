"""How speech examples (a waveform and its transcript) become CTC batches: `Encoding` kind
'speech'.

Stored per example (`stack`): the waveform cut or padded with zeros to `input_shape[0]` samples
('input', the stored integer PCM), its real length ('input_length'), and the transcript as
labels 1..len(alphabet) (0, the CTC blank, pads) cut or padded to `SpeechSpec.max_text`
('transcript') with its length ('transcript_length'). Transcripts are lowercased; characters
outside the alphabet are dropped. Batches (`batch`) hold 'input' float32 [B, samples] in [-1, 1)
and the three int32 arrays.

Lengths: the bundled `speech` dataset states them in its metadata (max_samples, max_text,
sample_rate, alphabet); another dataset (e.g. TFDS `librispeech`) takes `dataset.audio_length`
samples and `dataset.seq_len` characters, 16 kHz and `DEFAULT_ALPHABET`.
"""
import dataclasses
from typing import Sequence

import numpy as np

from research import errors

DEFAULT_ALPHABET = " abcdefghijklmnopqrstuvwxyz'"
DEFAULT_SAMPLE_RATE = 16_000


@dataclasses.dataclass(frozen=True)
class SpeechSpec:
  alphabet: str
  sample_rate: int
  max_text: int
  text: str = 'text'  # The transcript's TFDS feature.


def labels(text, alphabet: str, length: int) -> tuple[np.ndarray, int]:
  """(int32 [length] labels 1..len(alphabet), 0-padded; the number of real labels)."""
  text = text.decode('utf-8') if isinstance(text, bytes) else str(text)
  ids = [alphabet.index(c) + 1 for c in text.lower() if c in alphabet][:length]
  out = np.zeros((length,), np.int32)
  out[:len(ids)] = ids
  return out, len(ids)


def stack(encoding, examples: Sequence[dict]) -> dict[str, np.ndarray]:
  spec, length = encoding.speech, encoding.input_shape[0]
  inputs = np.zeros((len(examples), length), encoding.stored_dtype)
  input_length = np.zeros((len(examples),), np.int32)
  transcript = np.zeros((len(examples), spec.max_text), np.uint8)
  transcript_length = np.zeros((len(examples),), np.int32)
  for i, example in enumerate(examples):
    audio = np.asarray(example[encoding.feature])
    if audio.ndim == 2:  # Several channels: their mean.
      audio = audio.mean(axis=1)
    n = min(length, len(audio))
    inputs[i, :n], input_length[i] = audio[:n], n
    transcript[i], transcript_length[i] = labels(example[spec.text], spec.alphabet, spec.max_text)
  return {'input': inputs, 'input_length': input_length, 'transcript': transcript,
          'transcript_length': transcript_length}


def batch(encoding, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  inputs = raw['input'].astype(np.float32)
  if encoding.divisor != 1:
    inputs /= np.float32(encoding.divisor)
  return {'input': inputs, 'input_length': raw['input_length'].astype(np.int32),
          'transcript': raw['transcript'].astype(np.int32),
          'transcript_length': raw['transcript_length'].astype(np.int32)}


def empty(encoding, batch_size: int) -> dict[str, np.ndarray]:
  return batch(encoding, {
      'input': np.zeros((batch_size, *encoding.input_shape), encoding.stored_dtype),
      'input_length': np.zeros((batch_size,), np.int32),
      'transcript': np.zeros((batch_size, encoding.speech.max_text), np.int32),
      'transcript_length': np.zeros((batch_size,), np.int32)})


def resolve(name: str, builder, dataset_cfg, feature: str, positive_int):
  """(input_shape, stored dtype, divisor, SpeechSpec) of a speech dataset; UserError when its
  features are not a waveform and a transcript."""
  features = builder.info.features
  metadata = dict(builder.info.metadata or {})
  if feature not in features or 'text' not in features:
    raise errors.UserError(f'dataset {name!r} has features {sorted(features.keys())}; speech '
                           f'recognition needs a waveform {feature!r} and a transcript \'text\'')
  dtype = np.dtype(features[feature].np_dtype)
  if dtype.kind not in 'iu' and dtype.kind != 'f':
    raise errors.UserError(f'dataset {name!r}: feature {feature!r} ({dtype}) is not a waveform')
  samples = int(metadata.get('max_samples') or positive_int(dataset_cfg, 'audio_length', 16000))
  max_text = int(metadata.get('max_text') or positive_int(dataset_cfg, 'seq_len', 128))
  spec = SpeechSpec(alphabet=str(metadata.get('alphabet', DEFAULT_ALPHABET)),
                    sample_rate=int(metadata.get('sample_rate', DEFAULT_SAMPLE_RATE)),
                    max_text=max_text)
  divisor = float(np.iinfo(dtype).max) + 1 if dtype.kind == 'i' else 1.0
  return (samples,), dtype, divisor, spec

"""Tests of the token and audio data: the `addition` and `tones` builders, and text/audio input.

The bundled datasets are prepared once per session into the session's data_dir; the standard
TFDS text and audio layouts (lm1b, tiny_shakespeare, speech_commands) are checked on tiny
builders that the tests define and prepare themselves.
"""
import hashlib
import itertools
import math
import re

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from research import data
from research.core import tokens
from research.data import addition_builder, encoding, tones_builder
from research.errors import UserError


def _cfg(name, data_dir, **kwargs):
  return ml_collections.ConfigDict({'name': name, 'data_dir': str(data_dir), 'manual_dir': '',
                                    'validation_fraction': 0.1, **kwargs})


def _all(cfg, split, batch_size=512):
  """Every real example of `split`: {key: array}, in the eval order, padding removed."""
  batches = list(data.eval_batches(cfg, split, batch_size))
  keys = [k for k in batches[0] if k != 'mask']
  return {k: np.concatenate([b[k][b['mask']] for b in batches]) for k in keys}


_ADDITION = re.compile(r'^(\d+)\+(\d+)=(\d+)$')


def _parse(row):
  match = _ADDITION.match(tokens.decode(row))
  assert match, tokens.decode(row)
  return tuple(int(g) for g in match.groups())


# addition.


@pytest.fixture(scope='module')
def addition_lm(data_dir):
  cfg = _cfg('addition/lm', data_dir)
  return cfg, data.prepare(cfg), {s: _all(cfg, s) for s in ('train', 'validation', 'test')}


def test_addition_lm_info_and_sizes(addition_lm, data_dir):
  _, info, splits = addition_lm
  assert info.num_classes is None and info.vocab_size == tokens.VOCAB_SIZE == 256
  assert info.input_dtype == 'int32'
  assert info.input_shape == (addition_builder.SEQ_LEN,) == (16,)
  assert info.split_sizes == {'train': 18_000, 'validation': 2_000, 'test': 2_000}
  assert all('label' not in s for s in splits.values())
  assert data.prepare(_cfg('addition', data_dir)).split_sizes == info.split_sizes
  # Its sequence length is fixed by the builder: dataset.seq_len applies to text datasets only.
  assert data.prepare(_cfg('addition/lm', data_dir, seq_len=64)).input_shape == (16,)


def test_addition_lm_examples_are_correct_sums(addition_lm):
  _, _, splits = addition_lm
  for split in splits.values():
    assert split['input'].dtype == np.int32 and split['prompt_length'].dtype == np.int32
    for row, prompt_length in zip(split['input'], split['prompt_length']):
      a, b, c = _parse(row)
      assert c == a + b and 0 <= a < 1000 and 0 <= b < 1000
      assert prompt_length == len(f'{a}+{b}=')
      assert tokens.decode(row[:prompt_length]) == f'{a}+{b}='
      assert (row[len(f'{a}+{b}={c}'):] == tokens.PAD).all()


def test_addition_pairs_are_disjoint_between_train_and_test(addition_lm):
  _, _, splits = addition_lm
  pairs = {s: [_parse(row)[:2] for row in split['input']] for s, split in splits.items()}
  train = set(pairs['train']) | set(pairs['validation'])
  assert len(train) == 20_000 and len(set(pairs['test'])) == 2_000
  assert not train & set(pairs['test'])
  assert not train & {(b, a) for a, b in pairs['test']}  # Not even with the operands swapped.


def test_addition_check_labels_say_whether_the_sum_is_right(data_dir):
  cfg = _cfg('addition/check', data_dir)
  info = data.prepare(cfg)
  assert info.num_classes == 2 and info.input_dtype == 'int32' and info.vocab_size == 256
  assert sum(info.split_sizes.values()) == 22_000
  pairs = {}
  for split in ('train', 'validation', 'test'):
    examples = _all(cfg, split)
    parsed = [_parse(row) for row in examples['input']]
    correct = np.array([a + b == c for a, b, c in parsed])
    np.testing.assert_array_equal(examples['label'], correct.astype(np.int32))
    assert abs(correct.mean() - 0.5) < 0.03
    pairs[split] = {(a, b) for a, b, _ in parsed}
  assert _all(cfg, 'test')['label'].sum() == 1_000  # Exactly half of each generated split.
  assert len(pairs['test']) == 2_000 and not (pairs['train'] | pairs['validation']) & pairs['test']


def test_addition_wrong_sums_differ_in_one_digit_and_are_never_negative():
  pairs = addition_builder.make_pairs(0)['test']
  examples = addition_builder.make_examples(pairs, True, np.random.default_rng(0))
  wrong = examples['label'] == 0
  diff = np.abs(examples['shown_sum'] - pairs.sum(axis=1))[wrong]
  assert (examples['shown_sum'] >= 0).all() and (diff > 0).all()
  magnitude = 10**np.floor(np.log10(diff))
  assert np.isin(diff / magnitude, np.arange(1, 10)).all()
  assert len(np.unique(magnitude)) == addition_builder.DIGITS  # Not just the units digit.


def test_token_batches_train_and_eval_padding(data_dir):
  cfg = _cfg('addition/check', data_dir)
  batch = next(data.train_iterator(cfg, batch_size=32, seed=0))
  assert set(batch) == {'input', 'label', 'prompt_length'}
  assert batch['input'].dtype == np.int32 and batch['input'].shape == (32, 16)
  assert batch['prompt_length'].dtype == np.int32 and batch['label'].dtype == np.int32
  batches = list(data.eval_batches(cfg, 'test', 300))  # 2000 = 6 * 300 + 200.
  assert len(batches) == 7 and all(b['input'].dtype == np.int32 for b in batches)
  last = batches[-1]
  assert set(last) == {'input', 'label', 'prompt_length', 'mask'}
  assert last['mask'][:200].all() and not last['mask'][200:].any()
  assert (last['input'][200:] == tokens.PAD).all() and (last['prompt_length'][200:] == 0).all()
  assert (last['input'][:200, 0] != tokens.PAD).all()
  lm = next(data.eval_batches(_cfg('addition/lm', data_dir), 'test', 3000))
  assert set(lm) == {'input', 'prompt_length', 'mask'} and lm['mask'].sum() == 2000


def test_token_iterator_resumes_and_shards(data_dir):
  cfg = _cfg('addition/lm', data_dir)
  iterator = data.train_iterator(cfg, batch_size=1000, seed=5)  # 18 steps per epoch.
  list(itertools.islice(iterator, 17))
  state = iterator.get_state()
  expected = list(itertools.islice(iterator, 3))
  resumed = data.train_iterator(cfg, batch_size=1000, seed=5)
  resumed.set_state(state)
  for x, y in zip(expected, itertools.islice(resumed, 3)):
    np.testing.assert_array_equal(x['input'], y['input'])
    np.testing.assert_array_equal(x['prompt_length'], y['prompt_length'])
  shards = [next(data.train_iterator(cfg, batch_size=9000, seed=0, process_index=p,
                                     process_count=2)) for p in range(2)]
  rows = [{r.tobytes() for r in s['input']} for s in shards]
  assert len(rows[0]) == len(rows[1]) == 9000 and not rows[0] & rows[1]


# tones.


@pytest.fixture(scope='module')
def tones(data_dir):
  cfg = _cfg('tones', data_dir)
  return cfg, data.prepare(cfg), _all(cfg, 'train'), _all(cfg, 'test')


def test_tones_info_shapes_and_balance(tones):
  _, info, train, test = tones
  assert info.num_classes == 6 and info.input_shape == (tones_builder.LENGTH,) == (1024,)
  assert info.input_dtype == 'float32' and info.vocab_size is None
  assert info.split_sizes == {'train': 2_700, 'validation': 300, 'test': 600}
  assert train['input'].dtype == np.float32 and train['input'].shape == (2_700, 1024)
  assert np.isfinite(train['input']).all() and np.abs(train['input']).max() < 3
  assert np.bincount(test['label'], minlength=6).tolist() == [100] * 6
  assert np.bincount(train['label'], minlength=6).min() > 400


def _digest(split):
  return hashlib.sha256(split['input'].tobytes() + split['label'].tobytes()).hexdigest()


def test_tones_preparation_is_deterministic(tones, tmp_path):
  _, _, train, test = tones
  cfg = _cfg('tones', tmp_path)
  assert _digest(_all(cfg, 'test')) == _digest(test)
  assert _digest(_all(cfg, 'train')) == _digest(train)
  seed = tones_builder._SEEDS['test']  # pylint: disable=protected-access
  audio, labels = tones_builder.make_arrays(600, seed)
  assert sorted(map(bytes, audio)) == sorted(map(bytes, test['input']))
  assert not np.array_equal(audio, tones_builder.make_arrays(600, 1)[0])
  assert np.bincount(labels).tolist() == [100] * 6


def test_tones_classes_differ(tones):
  """Cheap spectral features already separate the classes that should differ in them."""
  _, _, _, test = tones
  x, y = test['input'].astype(np.float64), test['label']
  names = list(tones_builder.CLASS_NAMES)
  spectrum = np.abs(np.fft.rfft(x, axis=1))**2
  spectrum /= spectrum.sum(axis=1, keepdims=True)
  flatness = np.exp(np.log(spectrum + 1e-12).mean(axis=1)) / spectrum.mean(axis=1)
  peak = spectrum.max(axis=1)
  noisy = flatness[y == names.index('noise_burst')]
  tonal = flatness[y == names.index('sine')]
  assert np.median(noisy) > 4 * np.median(tonal)  # Noise is spectrally flat; a sine is not.
  assert np.median(peak[y == names.index('sine')]) > 1.5 * np.median(
      peak[y == names.index('chirp_up')])  # A sweep spreads its energy over a band.
  # Rising and falling sweeps: the spectral centroid of the second half of the sound is higher
  # (or lower) than that of the first.
  half = x.shape[1] // 2

  def centroid(segment):
    power = np.abs(np.fft.rfft(segment, axis=1))**2
    return (power * np.arange(power.shape[1])).sum(axis=1) / power.sum(axis=1)

  energy = np.cumsum(x**2, axis=1)
  mid = np.argmax(energy >= energy[:, -1:] / 2, axis=1)  # The sound's energy midpoint.
  padded = np.pad(x, ((0, 0), (half, half)))
  rows = np.arange(len(x))[:, None]
  before = padded[rows, mid[:, None] + np.arange(half // 2, half)]
  after = padded[rows, mid[:, None] + np.arange(half, half + half // 2)]
  rises = centroid(after) > centroid(before)
  assert rises[y == names.index('chirp_up')].mean() > 0.8
  assert rises[y == names.index('chirp_down')].mean() < 0.2


# Standard TFDS text and audio layouts, on tiny builders made here.

_WORDS = ('the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'héllo')


def _sentence(i):
  return ' '.join(_WORDS[(i * 7 + j) % len(_WORDS)] for j in range(2 + i % 9))


class TinyLines(tfds.core.GeneratorBasedBuilder):
  """lm1b-style: one short 'text' per example, train and test."""

  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, features=tfds.features.FeaturesDict({'text': tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples(0, 300), 'test': self._generate_examples(300, 45)}

  def _generate_examples(self, start, n):
    for i in range(start, start + n):
      yield i, {'text': _sentence(i)}


def corpus_text(split):
  return ''.join(f'{split} line {i}: {_sentence(i)}.\n' for i in range(800))


class TinyCorpus(tfds.core.GeneratorBasedBuilder):
  """tiny_shakespeare-style: a single long 'text' per split."""

  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, features=tfds.features.FeaturesDict({'text': tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in ('train', 'validation', 'test')}

  def _generate_examples(self, split):
    yield 0, {'text': corpus_text(split)}


class TinyCorpusTrainTest(TinyCorpus):
  """Like TinyCorpus, without a validation split."""

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in ('train', 'test')}


class TinySpeech(tfds.core.GeneratorBasedBuilder):
  """speech_commands-style: int16 waveforms of varying length, and a label.

  (tfds.features.Audio itself needs TensorFlow, so the waveform is a plain Tensor here.)
  """

  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'audio': tfds.features.Tensor(shape=(None,), dtype=np.int16),
        'label': tfds.features.ClassLabel(num_classes=3),
    }))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples(0, 20), 'test': self._generate_examples(20, 7)}

  def _generate_examples(self, start, n):
    for i in range(start, start + n):
      yield i, {'audio': np.full((50 + 10 * i,), i * 1000 - 16384, np.int16), 'label': i % 3}


@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp('tiny_tfds')
  for name in ('tiny_lines', 'tiny_corpus', 'tiny_corpus_train_test', 'tiny_speech'):
    tfds.builder(name, data_dir=directory).download_and_prepare(file_format='array_record')
  return directory


def test_text_per_example_is_byte_encoded_to_seq_len(tiny_dir):
  cfg = _cfg('tiny_lines', tiny_dir, seq_len=24)
  info = data.prepare(cfg)
  assert info.num_classes is None and info.input_dtype == 'int32' and info.vocab_size == 256
  assert info.input_shape == (24,)
  assert info.split_sizes == {'train': 270, 'validation': 30, 'test': 45}
  texts = {tokens.decode(row) for s in ('train', 'validation') for row in _all(cfg, s)['input']}
  expected = {tokens.decode(tokens.encode(_sentence(i), 24)) for i in range(300)}
  assert texts == expected  # Cut to 24 bytes (a 'é' may be cut in half), padded with PAD.
  batch = next(data.train_iterator(cfg, batch_size=16, seed=0))
  assert set(batch) == {'input', 'prompt_length'} and batch['input'].shape == (16, 24)
  assert (batch['prompt_length'] == 0).all()
  assert data.prepare(_cfg('tiny_lines', tiny_dir)).input_shape == (128,)  # The default.


def test_long_texts_are_cut_into_consecutive_windows(tiny_dir):
  cfg = _cfg('tiny_corpus', tiny_dir, seq_len=64)
  info = data.prepare(cfg)
  assert info.num_classes is None and info.input_shape == (64,) and info.input_dtype == 'int32'
  for split in ('train', 'validation', 'test'):
    text = corpus_text(split).encode('utf-8')
    assert info.split_sizes[split] == len(text) // 64
    windows = _all(cfg, split, batch_size=100)['input']
    assert windows.shape == (len(text) // 64, 64)
    assert windows.astype(np.uint8).tobytes() == text[:len(windows) * 64]
  iterator = data.train_iterator(cfg, batch_size=32, seed=0)
  first = next(iterator)
  assert first['input'].dtype == np.int32 and (first['input'] != tokens.PAD).all()
  state = iterator.get_state()
  expected = next(iterator)
  resumed = data.train_iterator(cfg, batch_size=32, seed=0)
  resumed.set_state(state)
  np.testing.assert_array_equal(next(resumed)['input'], expected['input'])


def test_windows_without_a_validation_split_are_carved_from_train(tiny_dir):
  # With its own validation split, that is used.
  info = data.prepare(_cfg('tiny_corpus', tiny_dir, seq_len=50, validation_fraction=0.25))
  assert info.splits == {'train': 'train', 'validation': 'validation', 'test': 'test'}
  # Without one, validation is the last windows of train (the slice counts windows).
  cfg = _cfg('tiny_corpus_train_test', tiny_dir, seq_len=50, validation_fraction=0.25)
  info = data.prepare(cfg)
  num_windows = len(corpus_text('train').encode('utf-8')) // 50
  cut = num_windows - math.floor(num_windows * 0.25 + 0.5)
  assert info.splits == {'train': f'train[:{cut}]', 'validation': f'train[{cut}:]',
                         'test': 'test'}
  assert info.split_sizes == {'train': cut, 'validation': num_windows - cut,
                              'test': len(corpus_text('test').encode('utf-8')) // 50}
  train = _all(cfg, 'train')['input'].astype(np.uint8).tobytes()
  validation = _all(cfg, 'validation')['input'].astype(np.uint8).tobytes()
  assert train + validation == corpus_text('train').encode('utf-8')[:num_windows * 50]


def test_variable_length_audio_is_padded_or_cut(tiny_dir):
  cfg = _cfg('tiny_speech', tiny_dir, audio_length=150)
  info = data.prepare(cfg)
  assert info.input_shape == (150,) and info.num_classes == 3 and info.input_dtype == 'float32'
  examples = _all(cfg, 'test')
  for row, label in zip(examples['input'], examples['label']):
    i = next(i for i in range(20, 27) if np.isclose(row[0], (i * 1000 - 16384) / 32768))
    length = min(150, 50 + 10 * i)
    assert label == i % 3
    np.testing.assert_allclose(row[:length], (i * 1000 - 16384) / 32768)  # int16 / 32768.
    assert (row[length:] == 0).all()
  assert data.prepare(_cfg('tiny_speech', tiny_dir)).input_shape == (16_000,)  # The default.


@pytest.mark.parametrize('key,value', [('seq_len', 0), ('seq_len', 'long'), ('seq_len', 2.5)])
def test_bad_seq_len_is_a_user_error(tiny_dir, key, value):
  with pytest.raises(UserError, match=f'dataset.{key} must be a positive integer'):
    data.prepare(_cfg('tiny_lines', tiny_dir, **{key: value}))


def test_bad_audio_length_is_a_user_error(tiny_dir):
  with pytest.raises(UserError, match='dataset.audio_length must be a positive integer'):
    data.prepare(_cfg('tiny_speech', tiny_dir, audio_length=-1))


def test_bundled_names_include_text_and_audio(tmp_path):
  assert {'addition', 'addition/lm', 'addition/check', 'tones'} <= set(data.BUNDLED)
  with pytest.raises(UserError, match="unknown dataset 'addition/sum'"):
    data.prepare(_cfg('addition/sum', tmp_path))


@pytest.mark.parametrize('name,kind', [('tiny_shakespeare', 'windows'), ('lm1b', 'text')])
def test_standard_text_datasets_get_their_kind_of_input(tmp_path, name, kind):
  """The real TFDS builders (unprepared here: only their features are read)."""
  builder = tfds.builder(name, data_dir=tmp_path)
  resolved = encoding.resolve(name, builder, ml_collections.ConfigDict({'seq_len': 64}))
  assert resolved.kind == kind and resolved.input_shape == (64,) and not resolved.has_label
  assert resolved.input_dtype == 'int32' and resolved.vocab_size == 256


def test_speech_commands_unprepared_or_without_tensorflow_is_a_user_error(tmp_path):
  # Not prepared here; where TensorFlow is missing, its Audio feature cannot even be built.
  with pytest.raises(UserError, match="'speech_commands'"):
    data.prepare(_cfg('speech_commands', tmp_path))

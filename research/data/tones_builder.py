"""TFDS builder `tones`: six classes of synthesized sounds, generated offline, for audio models.

Each example is LENGTH = 1,024 float32 samples at SAMPLE_RATE = 8,000 Hz (0.128 s) holding one
sound of its class, placed at a random onset with a random duration (256 to 1,024 samples, short
fades at both ends), over Gaussian background noise:

  sine, square, sawtooth  a steady tone of random pitch (200-2,000 Hz, log-uniform);
  chirp_up, chirp_down    an exponential sweep across a random band (ratio 2x to 10x within
                          200-2,000 Hz), upwards or downwards;
  noise_burst             white noise.

Amplitude (0.2-1.0), phase, pitch, onset, duration and noise level (standard deviation
0.02-0.3) are random per example. Waveform shape separates the steady tones (square and
sawtooth are synthesized without band-limiting, so their harmonics alias, as they would in a
naive synthesizer); the direction of the sweep separates the chirps. With random phase and
pitch, no single template matches a class, so a linear model on raw samples stays near chance
while a small convolutional model (e.g. a WaveNet) learns the task.

3,000 train / 600 test examples, exactly balanced (500 / 100 per class), each split from its own
fixed seed.
"""
import numpy as np
import tensorflow_datasets as tfds

from research.data import local_builder

SAMPLE_RATE = 8_000
LENGTH = 1_024
CLASS_NAMES = ('sine', 'square', 'sawtooth', 'chirp_up', 'chirp_down', 'noise_burst')
NUM_EXAMPLES = {'train': 3_000, 'test': 600}
# Changing any of these changes the data: bump VERSION if you do.
_SEEDS = {'train': 7001, 'test': 7002}
_MIN_HZ, _MAX_HZ = 200.0, 2_000.0
_MIN_SWEEP_RATIO = 2.0
_MIN_DURATION = 256
_FADE = 16  # Samples of linear fade-in and fade-out.
_AMPLITUDE = (0.2, 1.0)
_NOISE_STD = (0.02, 0.3)

_DESCRIPTION = """\
Synthesized sounds in six classes (sine, square, sawtooth, rising chirp, falling chirp, noise
burst) with random pitch, phase, amplitude, onset and duration over Gaussian noise: 1,024 samples
at 8 kHz. 3,000 train / 600 test, balanced.
"""


def _log_uniform(rng: np.random.Generator, low, high, size) -> np.ndarray:
  return np.exp(rng.uniform(np.log(low), np.log(high), size))


def make_arrays(num_examples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Returns (audio float32 [n, LENGTH], labels int64 [n]), balanced over the classes.

  Vectorized over examples: the train split takes about a second.
  """
  rng = np.random.default_rng(seed)
  n = num_examples
  labels = rng.permutation(np.arange(n) % len(CLASS_NAMES)).astype(np.int64)
  t = np.arange(LENGTH, dtype=np.float64)[None, :]  # Samples since the start of the clip.

  # Where the sound is: an onset, a duration, and an envelope with short fades.
  duration = rng.integers(_MIN_DURATION, LENGTH + 1, n)[:, None]
  onset = np.floor(rng.random(n)[:, None] * (LENGTH - duration + 1))
  local = t - onset  # Samples since the onset.
  envelope = np.clip(np.minimum(local + 1, duration - local) / _FADE, 0.0, 1.0)

  # Instantaneous phase (in cycles) of steady tones and of exponential sweeps f0 -> f1.
  f0 = _log_uniform(rng, _MIN_HZ, _MAX_HZ, n)[:, None]
  low = _log_uniform(rng, _MIN_HZ, _MAX_HZ / _MIN_SWEEP_RATIO, n)[:, None]
  high = low * _log_uniform(rng, _MIN_SWEEP_RATIO, _MAX_HZ / low, (n, 1))
  rising = labels[:, None] == CLASS_NAMES.index('chirp_up')
  start, end = np.where(rising, low, high), np.where(rising, high, low)
  rate = np.log(end / start) / duration  # Per sample: f(s) = start * exp(rate * s).
  sweep = start / SAMPLE_RATE * np.expm1(rate * local) / rate
  steady = f0 / SAMPLE_RATE * local
  is_chirp = np.isin(labels, [CLASS_NAMES.index('chirp_up'), CLASS_NAMES.index('chirp_down')])
  cycles = np.where(is_chirp[:, None], sweep, steady) + rng.random(n)[:, None]

  waves = {
      'sine': np.sin(2 * np.pi * cycles),
      'square': np.where(cycles % 1.0 < 0.5, 1.0, -1.0),
      'sawtooth': 2.0 * (cycles % 1.0) - 1.0,
      'noise_burst': rng.standard_normal((n, LENGTH)) * 0.6,  # About a sine's loudness.
  }
  waves['chirp_up'] = waves['chirp_down'] = waves['sine']
  signal = np.choose(labels[:, None], [waves[name] for name in CLASS_NAMES])
  amplitude = rng.uniform(*_AMPLITUDE, (n, 1))
  noise_std = rng.uniform(*_NOISE_STD, (n, 1))
  audio = amplitude * envelope * signal + noise_std * rng.standard_normal((n, LENGTH))
  return audio.astype(np.float32), labels


class Tones(local_builder.LocalBuilder):
  """Six classes of synthesized sounds, 1,024 samples at 8 kHz."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: 6 classes, 3,000 train / 600 test, 1,024 samples at 8 kHz.',
  }

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({
            'audio': tfds.features.Tensor(shape=(LENGTH,), dtype=np.float32),
            'label': tfds.features.ClassLabel(names=list(CLASS_NAMES)),
        }),
        supervised_keys=('audio', 'label'),
        metadata=tfds.core.MetadataDict(sample_rate=SAMPLE_RATE),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Generated, not downloaded.
    return {split: self._generate_examples(*make_arrays(n, _SEEDS[split]))
            for split, n in NUM_EXAMPLES.items()}

  def _generate_examples(self, audio, labels):
    for i in range(len(labels)):
      yield i, {'audio': audio[i], 'label': int(labels[i])}

"""TFDS builder `speech`: English utterances synthesized offline with eSpeak NG, for speech
recognition (CTC).

Each example is one utterance: int16 `audio` at SAMPLE_RATE = 8,000 Hz (eSpeak NG speaks at
22,050 Hz; the waveform is band-limited and resampled to 8 kHz with an FFT, telephone bandwidth,
which keeps the data and the models small), at most MAX_SAMPLES (3 s); its `text` (lowercase
words over `speech_texts.ALPHABET`, exactly what was spoken) and its `voice`. Sentences are
spoken numbers ('three hundred and forty two'), digit strings ('four one seven two') and short
commands ('turn off the kitchen lights'), in equal turns (research/data/speech_texts.py).

What varies per utterance, drawn from the split's seed: the voice (an English accent and a voice
variant of eSpeak NG), speaking rate (140-220 words per minute), pitch (25-75) and pitch range
(30-80), silence before and after (0-0.25 s), loudness (peak 0.15-0.9 of full scale) and white
noise (15-40 dB below the speech's power).

Disjoint splits, so the test measures generalization to unseen voices and unseen sentences:
  voices     every split has its own voice variants (`VARIANTS`), spoken in all eight accents;
  sentences  a sentence belongs to one split only, by a hash of its text (`speech_texts`).

3,600 train / 400 validation / 400 test; preparing takes about 38 s of CPU (one core). Texts,
voices and all drawn parameters are a function of the version's seeds; the waveforms are those of
the eSpeak NG shipped by the pinned espeakng-loader, which are not bit-exact across processes
(a sample or two of length: research/data/espeak.py).
"""
import math

import numpy as np
import tensorflow_datasets as tfds

from research.data import espeak, local_builder, speech_texts

SAMPLE_RATE = 8_000
MAX_SAMPLES = 3 * SAMPLE_RATE
MAX_TEXT = 64  # Characters: the longest sentence has 50.
NUM_EXAMPLES = {'train': 3_600, 'validation': 400, 'test': 400}
ACCENTS = ('en', 'en-us', 'en-gb-scotland', 'en-gb-x-rp', 'en-gb-x-gbclan', 'en-gb-x-gbcwmd',
           'en-029', 'en-us-nyc')
VARIANTS = {
    'train': ('m1', 'm3', 'm4', 'm5', 'm7', 'f1', 'f2', 'f4', 'klatt', 'klatt2', 'klatt4'),
    'validation': ('m2', 'f5'),
    'test': ('m6', 'f3', 'klatt3'),
}
# Changing any of these changes the data: bump VERSION if you do.
_SEEDS = {'train': 18_001, 'validation': 18_002, 'test': 18_003}
_RATE, _PITCH, _RANGE = (140, 220), (25, 75), (30, 80)
_SILENCE_S = (0.0, 0.25)
_PEAK = (0.15, 0.9)
_SNR_DB = (15.0, 40.0)
_TRIM_LEVEL = 200  # |int16| below this at either end is eSpeak's silence, trimmed before padding.

_DESCRIPTION = """\
English utterances synthesized with eSpeak NG (spoken numbers, digit strings, short commands) in
eight accents and many voice variants, with random rate, pitch, silence, loudness and noise;
int16 audio at 8 kHz with the transcript. Voices and sentences are disjoint between splits.
"""


def _smooth(n: int) -> int:
  """The smallest 2·3·5-smooth integer >= n (an FFT length that is fast)."""
  while True:
    m = n
    for p in (2, 3, 5):
      while m % p == 0:
        m //= p
    if m == 1:
      return n
    n += 1


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
  """float64 `audio` resampled by truncating its spectrum (band-limited; rate_out < rate_in).

  The signal is zero-padded to a multiple of rate_in / gcd whose cofactor is 5-smooth, so both
  FFT lengths factor into small primes (fast), and the output is cut back to the
  round(len · rate_out / rate_in) samples of the original span."""
  step = math.gcd(rate_in, rate_out)
  unit_in, unit_out = rate_in // step, rate_out // step
  m = _smooth(-(-len(audio) // unit_in))
  padded = np.concatenate([audio, np.zeros(m * unit_in - len(audio))])
  spectrum = np.fft.rfft(padded)[:m * unit_out // 2 + 1]
  out = np.fft.irfft(spectrum, m * unit_out) * (unit_out / unit_in)
  return out[:int(round(len(audio) * rate_out / rate_in))]


def _trim(audio: np.ndarray) -> np.ndarray:
  loud = np.flatnonzero(np.abs(audio) > _TRIM_LEVEL)
  return audio[loud[0]:loud[-1] + 1] if len(loud) else audio[:0]


def utterance(synth: espeak.Synthesizer, text: str, voice: str,
              rng: np.random.Generator) -> np.ndarray:
  """int16 [n <= MAX_SAMPLES] of `text` spoken in `voice` with this utterance's random
  variations (rate, pitch, range, silence, loudness, noise); spoken faster if too long."""
  rate = rng.uniform(*_RATE)
  pitch, pitch_range = rng.uniform(*_PITCH), rng.uniform(*_RANGE)
  before, after = rng.uniform(*_SILENCE_S, 2)
  peak, snr_db = rng.uniform(*_PEAK), rng.uniform(*_SNR_DB)
  noise_key = rng.integers(2 ** 32)
  budget = MAX_SAMPLES - int((before + after) * SAMPLE_RATE)
  while True:
    speech = _trim(synth.speak(text, voice, int(rate), int(pitch), int(pitch_range),
                               seed=int(noise_key)))
    speech = resample(speech.astype(np.float64), espeak.SAMPLE_RATE, SAMPLE_RATE)
    if len(speech) <= budget or rate >= 400:
      break
    rate *= 1.1 * len(speech) / budget
  speech = speech[:budget]
  speech *= peak * 32767 / max(np.abs(speech).max(), 1.0)
  audio = np.concatenate([np.zeros(int(before * SAMPLE_RATE)), speech,
                          np.zeros(int(after * SAMPLE_RATE))])
  noise_std = np.sqrt(np.mean(speech ** 2) / 10 ** (snr_db / 10))
  audio += noise_std * np.random.default_rng(noise_key).standard_normal(len(audio))
  return np.clip(np.round(audio), -32768, 32767).astype(np.int16)


def make_split(split: str, num_examples: int | None = None) -> list[dict]:
  """The examples of `split`: {'audio', 'text', 'voice'} dicts, deterministic: synthesized by
  a freshly loaded copy of the library (research/data/espeak.py says why)."""
  num_examples = NUM_EXAMPLES[split] if num_examples is None else num_examples
  rng = np.random.default_rng(_SEEDS[split])
  texts = speech_texts.sentences(split, num_examples, _SEEDS[split])
  examples = []
  with espeak.Synthesizer() as synth:
    for text in texts:
      voice = f'{ACCENTS[rng.integers(len(ACCENTS))]}+{rng.choice(VARIANTS[split])}'
      examples.append({'audio': utterance(synth, text, voice, rng), 'text': text,
                       'voice': voice})
  return examples


class Speech(local_builder.LocalBuilder):
  """English utterances synthesized with eSpeak NG, with transcripts: 8 kHz int16."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: 3,600 / 400 / 400 utterances, 8 kHz, disjoint voices and texts.',
  }

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({
            'audio': tfds.features.Tensor(shape=(None,), dtype=np.int16),
            'text': tfds.features.Text(),
            'voice': tfds.features.Text(),
        }),
        metadata=tfds.core.MetadataDict(sample_rate=SAMPLE_RATE, max_samples=MAX_SAMPLES,
                                        max_text=MAX_TEXT, alphabet=speech_texts.ALPHABET),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Synthesized, not downloaded.
    return {split: self._generate_examples(split) for split in NUM_EXAMPLES}

  def _generate_examples(self, split):
    for i, example in enumerate(make_split(split)):
      yield i, example

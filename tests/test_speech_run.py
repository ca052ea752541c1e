"""The speech path end to end: the bundled `speech` dataset (determinism, disjoint voices and
sentences), a short CTC run through `research train`, `research transcribe` on a WAV file the
test writes, and every bad input of transcribe (one line, exit 2)."""
import json
import pathlib
import shutil
import wave

import numpy as np
import pytest

from conftest import assert_usage_error, run_cli
from research.data import espeak, speech_builder, speech_texts

pytestmark = pytest.mark.slow

# A tiny recognizer: the point is the path, not the accuracy (configs/deepspeech_speech.py).
TINY = ['--config.total_steps=6', '--config.checkpoint_every=6', '--config.eval_every=6',
        '--config.batch_size=8', '--config.model.hidden_size=8', '--config.model.num_layers=1',
        '--config.model.conv_channels=2', '--config.model.num_mels=16',
        '--config.optimizer.warmup_steps=0', '--config.progress=none']


def test_utterances_are_deterministic_and_voices_and_sentences_disjoint():
  first, again = speech_builder.make_split('test', 3), speech_builder.make_split('test', 3)
  for a, b in zip(first, again):
    assert a['text'] == b['text'] and a['voice'] == b['voice']
    # eSpeak NG's waveforms are not bit-exact between runs (research/data/espeak.py): a sample
    # or two of length; the texts, voices and drawn parameters are.
    assert abs(len(a['audio']) - len(b['audio'])) <= 8
    assert a['audio'].dtype == np.int16 and 0 < len(a['audio']) <= speech_builder.MAX_SAMPLES
  assert all(e['voice'].split('+')[1] in speech_builder.VARIANTS['test'] for e in first)
  variants = [set(v) for v in speech_builder.VARIANTS.values()]
  assert all(not (a & b) for i, a in enumerate(variants) for b in variants[i + 1:])
  texts = {split: set(speech_texts.sentences(split, n, speech_builder._SEEDS[split]))  # pylint: disable=protected-access
           for split, n in speech_builder.NUM_EXAMPLES.items()}
  assert not texts['train'] & texts['test'] and not texts['train'] & texts['validation']
  assert not texts['validation'] & texts['test']
  assert all(set(t) <= set(speech_texts.ALPHABET) for t in texts['train'])
  assert speech_texts.number_words(342) == 'three hundred and forty two'
  assert speech_texts.number_words(7042) == 'seven thousand and forty two'


@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> pathlib.Path:
  workdir = tmp_path_factory.mktemp('speech') / 'run'
  result = run_cli('train', '--config', 'configs/deepspeech_speech.py', *TINY,
                   '--workdir', str(workdir))
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def test_a_ctc_run_reports_exact_cer_and_wer_on_every_split(trained, data_dir):
  summary = json.loads((trained / 'summary.json').read_text())
  final = summary['final'] if 'final' in summary else summary
  text = json.dumps(final)
  for split in ('train', 'validation', 'test'):
    assert split in text
  assert '"cer"' in text and '"wer"' in text
  record = json.loads((trained / 'dataset.json').read_text())
  assert record['alphabet'] == speech_texts.ALPHABET and record['sample_rate'] == 8000
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder('speech', data_dir=data_dir)
  voices = {split: {e['voice'] for e in builder.as_data_source(split=split)}
            for split in ('train', 'test')}
  assert voices['test'] and not voices['train'] & voices['test']


def _write_wav(path: pathlib.Path, audio: np.ndarray, rate: int, width: int = 2) -> None:
  with wave.open(str(path), 'wb') as f:
    f.setnchannels(1)
    f.setsampwidth(width)
    f.setframerate(rate)
    f.writeframes(audio.tobytes())


def test_transcribe_a_wav_written_here(trained, tmp_path):
  with espeak.Synthesizer() as synth:
    audio = speech_builder.utterance(synth, 'turn off the garage fan', 'en-us+m6',
                                     np.random.default_rng(0))
  path = tmp_path / 'command.wav'
  _write_wav(path, audio, speech_builder.SAMPLE_RATE)
  texts = {}
  for decoder in ('greedy', 'beam'):
    result = run_cli('transcribe', '--workdir', str(trained), '--audio', str(path),
                     '--decoder', decoder)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out['decoder'] == decoder and isinstance(out['text'], str)
    assert set(out['text']) <= set(speech_texts.ALPHABET)
    texts[decoder] = out['text']
  from research.speech import decoding, wav  # pylint: disable=g-import-not-at-top
  recognizer = decoding.Recognizer.load(str(trained))
  waveform = wav.read(str(path), 8000)
  np.testing.assert_allclose(waveform, audio / 32768.0, atol=1e-6)
  # The Python API decodes what the CLI's greedy run above printed (the same command: not rerun).
  assert recognizer.transcribe(waveform, 'greedy') == texts['greedy']


def test_transcribe_bad_inputs_are_one_line_exit_2(trained, tmp_path):
  not_wav = tmp_path / 'notes.wav'
  not_wav.write_text('this is not audio\n')
  empty = tmp_path / 'empty.wav'
  empty.write_bytes(b'')
  no_samples = tmp_path / 'silent.wav'
  _write_wav(no_samples, np.zeros(0, np.int16), 8000)
  wrong_rate = tmp_path / 'fast.wav'
  _write_wav(wrong_rate, np.zeros(1600, np.int16), 16000)
  cases = [(not_wav, 'not a PCM WAV file'), (empty, 'is empty'), (no_samples, 'no audio'),
           (wrong_rate, '16000 Hz')]
  for path, needle in cases:
    result = run_cli('transcribe', '--workdir', str(trained), '--audio', str(path))
    assert_usage_error(result, needle)
  # A checkpoint trained with another alphabet than the prepared dataset's (same size).
  other = tmp_path / 'other'
  shutil.copytree(trained, other)
  record = json.loads((other / 'dataset.json').read_text())
  record['alphabet'] = record['alphabet'][:-1] + '-'
  (other / 'dataset.json').write_text(json.dumps(record))
  _write_wav(tmp_path / 'ok.wav', np.ones(4000, np.int16), 8000)
  assert_usage_error(run_cli('transcribe', '--workdir', str(other), '--audio',
                             str(tmp_path / 'ok.wav')), 'alphabet')
  assert_usage_error(run_cli('transcribe', '--workdir', str(trained)), '--audio')

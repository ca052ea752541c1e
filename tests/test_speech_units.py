"""Speech recognition pieces against hand-computed cases: CTC loss, greedy and beam decoding,
edit distances (CER/WER sums), the character LM, and the audio features."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.core import audio_features, char_lm, ctc, ctc_beam, edit_distance

ALPHABET = " ab"  # Labels: 0 blank, 1 ' ', 2 'a', 3 'b'.


def _ctc_loss(probs, labels, num_frames=None):
  """optax's CTC loss through the task's code, for probabilities [T, V] of one utterance."""
  logits = jnp.log(jnp.asarray(probs, jnp.float32))[None]
  frames = logits.shape[1] if num_frames is None else num_frames
  paddings = (jnp.arange(logits.shape[1]) >= frames).astype(jnp.float32)[None]
  label_row = jnp.zeros((1, 4), jnp.int32).at[0, :len(labels)].set(jnp.asarray(labels))
  targets = {'labels': label_row, 'label_lengths': jnp.array([len(labels)]),
             'weights': jnp.ones(1), 'examples': jnp.ones(1), 'decode': False}
  loss, _ = ctc.loss_and_sums({'logits': logits, 'paddings': paddings}, targets, space=1)
  return float(loss)


def test_ctc_loss_matches_path_sums_computed_by_hand():
  # 2 frames, transcript 'a': the paths a a, a -, - a collapse to it.
  p = [[0.4, 0.0001, 0.6 - 0.0001, 0.0], [0.7, 0.0, 0.3, 0.0]]
  p = np.asarray(p) + 1e-12
  p /= p.sum(1, keepdims=True)
  by_hand = p[0, 2] * p[1, 2] + p[0, 2] * p[1, 0] + p[0, 0] * p[1, 2]
  assert _ctc_loss(p, [2]) == pytest.approx(-math.log(by_hand), rel=1e-5)
  # 3 frames, transcript 'aa': a repeat needs a blank between, so a - a is the only path.
  q = np.array([[0.2, 0.1, 0.5, 0.2], [0.6, 0.1, 0.2, 0.1], [0.3, 0.1, 0.4, 0.2]])
  assert _ctc_loss(q, [2, 2]) == pytest.approx(-math.log(0.5 * 0.6 * 0.4), rel=1e-5)
  # 3 frames, 'ab': a a b, a b b, a - b, - a b, a b -.
  ab = (q[0, 2] * q[1, 2] * q[2, 3] + q[0, 2] * q[1, 3] * q[2, 3] + q[0, 2] * q[1, 0] * q[2, 3]
        + q[0, 0] * q[1, 2] * q[2, 3] + q[0, 2] * q[1, 3] * q[2, 0])
  assert _ctc_loss(q, [2, 3]) == pytest.approx(-math.log(ab), rel=1e-5)
  # Padding frames are not part of the utterance: 'a' over the first 2 of 3 frames.
  padded = np.concatenate([p, [[0.01, 0.01, 0.97, 0.01]]])
  assert _ctc_loss(padded, [2], num_frames=2) == pytest.approx(-math.log(by_hand), rel=1e-5)


def test_greedy_merges_repeats_drops_blanks_and_ignores_padding():
  best = [2, 2, 0, 2, 3, 3, 1, 3, 2]  # a a - a b b ' ' b | a (padding)
  logits = jax.nn.one_hot(jnp.array([best]), 4) * 5.0
  paddings = (jnp.arange(9) >= 8).astype(jnp.float32)[None]
  labels, length = ctc.greedy(logits, paddings)
  assert int(length[0]) == 5
  assert labels[0, :5].tolist() == [2, 2, 3, 1, 3]  # 'aab b'
  assert labels[0, 5:].tolist() == [0] * 4
  assert ctc_beam.greedy(np.log(np.asarray(jax.nn.softmax(logits[0, :8]))), ALPHABET) == 'aab b'


@pytest.mark.parametrize('hyp,ref,expected', [
    ('kitten', 'sitting', 3), ('', 'abc', 3), ('abc', '', 3), ('flaw', 'lawn', 2),
    ('same', 'same', 0), ('ab', 'ba', 2)])
def test_edit_distance_hand_cases(hyp, ref, expected):
  letters = sorted(set(hyp + ref)) or ['x']
  code = lambda s: [letters.index(c) + 1 for c in s] + [0] * (8 - len(s))  # noqa: E731
  got = edit_distance.distance(jnp.array([code(hyp)]), jnp.array([len(hyp)]),
                               jnp.array([code(ref)]), jnp.array([len(ref)]))
  assert int(got[0]) == expected == edit_distance.host_distance(hyp, ref)


def test_error_sums_count_characters_and_words_exactly_over_a_batch():
  alphabet = " abcdefghijklmnopqrstuvwxyz'"
  encode = lambda s: [alphabet.index(c) + 1 for c in s] + [0] * (24 - len(s))  # noqa: E731
  pairs = [('the cat sat', 'the cat sat down'), ('a b c', 'a x c'), ('go left', 'go left'),
           ('', 'stop')]
  hyp = jnp.array([encode(h) for h, _ in pairs])
  ref = jnp.array([encode(r) for _, r in pairs])
  weights = jnp.array([1.0, 1.0, 1.0, 0.0])  # The last utterance is padding: not counted.
  sums = ctc.error_sums(hyp, jnp.array([len(h) for h, _ in pairs]), ref,
                        jnp.array([len(r) for _, r in pairs]), weights, space=1)
  assert [float(x) for x in sums['cer']] == [5 + 1 + 0, 16 + 5 + 7]
  assert [float(x) for x in sums['wer']] == [1 + 1 + 0, 4 + 3 + 2]


def test_beam_search_finds_the_labelling_that_greedy_misses():
  # Per frame: blank 0.5, 'a' 0.4, 'b' 0.1. The best path is '--' (0.25) but P('a') = 0.56.
  frame = np.log([0.5, 1e-9, 0.4, 0.1])
  log_probs = np.stack([frame, frame])
  assert ctc_beam.greedy(log_probs, ALPHABET) == ''
  assert ctc_beam.decode(log_probs, ALPHABET, beam=4, beta=0.0) == 'a'


def test_char_lm_is_normalized_and_steers_the_beam():
  lm = char_lm.CharLM.fit(['ab', 'ab', 'ab b'], ALPHABET, order=3)
  for history in ('', 'a', 'ab', 'zz'):
    total = sum(math.exp(lm.logprob(history, c)) for c in ALPHABET + char_lm.END)
    assert total == pytest.approx(1.0, abs=1e-9)
  assert lm.logprob('a', 'b') > lm.logprob('a', 'a')
  # Acoustically 'ab' and 'aa' are equally likely; the LM prefers 'ab'.
  frames = np.log(np.array([[0.01, 1e-6, 0.98, 0.01], [0.01, 1e-6, 0.49, 0.5]]))
  assert ctc_beam.decode(frames, ALPHABET, beam=8, lm=lm, alpha=1.0, beta=0.0) == 'ab'


def test_mel_filterbank_shape_and_peaks():
  bank = audio_features.mel_filterbank(40, 256, 8000)
  assert bank.shape == (129, 40)
  assert bank.min() >= 0.0 and np.allclose(bank.max(0), 1.0)
  centres = bank.argmax(0)
  assert np.all(np.diff(centres) >= 0) and centres[-1] <= 128  # Low to high frequencies.
  dct = audio_features.dct_matrix(40, 13)
  assert np.allclose(dct.T @ dct, np.eye(13), atol=1e-5)  # Orthonormal columns.


def test_a_sine_peaks_at_its_frequency_bin():
  t = np.arange(8000) / 8000.0
  audio = jnp.asarray(np.sin(2 * np.pi * 1000.0 * t)[None], jnp.float32)
  power = audio_features.power_spectrum(audio, window=200, hop=80, fft_size=256)
  assert power.shape == (1, 1 + (8000 - 200) // 80, 129)
  assert set(np.asarray(power[0].argmax(-1)).tolist()) == {32}  # 1000 / 8000 * 256.
  mels = audio_features.log_mel(audio, 8000, 200, 80, 256, 40)
  bank = audio_features.mel_filterbank(40, 256, 8000)
  assert int(mels[0, 5].argmax()) == int(bank[32].argmax())


def test_normalization_and_spec_augment_respect_lengths():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 30, 8)) * 3 + 5
  lengths = jnp.array([30, 12])
  y = audio_features.normalize(x, lengths)
  assert np.allclose(y[1, :12].mean(0), 0, atol=1e-4)
  assert np.allclose(y[1, :12].std(0), 1, atol=1e-2)
  assert np.all(y[1, 12:] == 0)
  masked = audio_features.spec_augment(jax.random.PRNGKey(1), y, lengths, freq_masks=1,
                                       freq_width=3, time_masks=1, time_width=4)
  changed = np.asarray((masked != y))
  assert changed.any() and masked.shape == y.shape
  assert not changed[1, 12:].any()
  assert audio_features.num_frames(jnp.array([200, 199, 280]), 200, 80).tolist() == [1, 1, 2]

"""Greedy against beam-search (+ character LM) decoding of a finished speech run, on whole splits.

`evaluate_workdir(workdir)`:
  1. decodes the first `TUNE_UTTERANCES` of the validation split with beam search and the
     training transcripts' character LM for each (alpha, beta) of `GRID`, and keeps the pair
     with the fewest word errors (the test split plays no part in the choice);
  2. decodes the test split greedily and with beam search and the LM at the chosen weights
     (and with beam search without the LM when `without_lm`);
  3. writes `DIR/speech/eval.json` (every CER/WER as exact sums: edits and reference lengths)
     and `DIR/speech/examples.npz` (spectrogram, posteriors and transcripts of the first test
     utterances, for the report's figure: research/reports/speech_plots.py).
"""
import json
import os
import time

import jax.numpy as jnp
import numpy as np

from research import data
from research.core import edit_distance
from research.speech import decoding

GRID = ((0.3, 0.5), (0.5, 1.0), (1.0, 2.0))  # (alpha, beta): LM weight, per-character bonus.
TUNE_UTTERANCES = 200  # Beam search runs in Python on the host: a few ms per utterance.
EXAMPLES = 4
_BATCH = 100


def _split_posteriors(recognizer: decoding.Recognizer, split: str):
  """(log posteriors per utterance, reference transcripts) of a whole split."""
  posteriors, references = [], []
  for batch in data.eval_batches(recognizer.run.dataset, split, _BATCH):
    real = batch['mask']
    posteriors += recognizer.log_probs(batch['input'][real], batch['input_length'][real])
    references += decoding.texts(batch['transcript'][real], batch['transcript_length'][real],
                                 recognizer.alphabet)
  return posteriors, references


def error_rates(hypotheses: list[str], references: list[str]) -> dict:
  """{'cer', 'wer', and the sums they are made of} over a list of utterances."""
  chars = sum(edit_distance.host_distance(h, r) for h, r in zip(hypotheses, references))
  words = sum(edit_distance.host_distance(h.split(), r.split())
              for h, r in zip(hypotheses, references))
  ref_chars = sum(len(r) for r in references)
  ref_words = sum(len(r.split()) for r in references)
  return {'cer': chars / max(ref_chars, 1), 'wer': words / max(ref_words, 1),
          'char_edits': chars, 'ref_chars': ref_chars, 'word_edits': words,
          'ref_words': ref_words, 'utterances': len(references)}


def _decode_all(recognizer, posteriors, decoder, **weights) -> list[str]:
  return [recognizer.decode(p, decoder, **weights) for p in posteriors]


def evaluate_workdir(workdir: str, step: int | None = None, without_lm: bool = False) -> dict:
  """Runs steps 1-3 of the module docstring; returns what eval.json holds."""
  start = time.time()
  recognizer = decoding.Recognizer.load(workdir, step)
  recognizer.language_model()
  valid, valid_refs = _split_posteriors(recognizer, 'validation')
  valid, valid_refs = valid[:TUNE_UTTERANCES], valid_refs[:TUNE_UTTERANCES]
  tuning = []
  for alpha, beta in GRID:
    rates = error_rates(_decode_all(recognizer, valid, 'beam', alpha=alpha, beta=beta),
                        valid_refs)
    tuning.append({'alpha': alpha, 'beta': beta, 'cer': rates['cer'], 'wer': rates['wer']})
  best = min(tuning, key=lambda row: (row['wer'], row['cer']))
  test, test_refs = _split_posteriors(recognizer, 'test')
  hypotheses = {
      'greedy': _decode_all(recognizer, test, 'greedy'),
      'beam_lm': _decode_all(recognizer, test, 'beam', alpha=best['alpha'], beta=best['beta']),
  }
  if without_lm:
    hypotheses['beam'] = _decode_all(recognizer, test, 'beam', alpha=0.0, beta=0.0)
  result = {
      'step': recognizer.run.step,
      'test': {name: error_rates(hyps, test_refs) for name, hyps in hypotheses.items()},
      'validation_subset_greedy': error_rates(_decode_all(recognizer, valid, 'greedy'), valid_refs),
      'lm': {'order': decoding.LM_ORDER, 'beam': decoding.BEAM, 'alpha': best['alpha'],
             'beta': best['beta'], 'tuned_on': 'validation', 'grid': tuning},
      'seconds': round(time.time() - start, 1),
  }
  out = os.path.join(workdir, 'speech')
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, 'eval.json'), 'w') as f:
    json.dump(result, f, indent=1)
  _write_examples(recognizer, out, test[:EXAMPLES], test_refs[:EXAMPLES],
                  {name: hyps[:EXAMPLES] for name, hyps in hypotheses.items()})
  return result


def _write_examples(recognizer, out: str, posteriors, references, hypotheses) -> None:
  batch = next(iter(data.eval_batches(recognizer.run.dataset, 'test', EXAMPLES)))
  model = recognizer.run.model
  features, frames = model.apply({'params': recognizer.run.params},
                                 jnp.asarray(batch['input']), jnp.asarray(batch['input_length']),
                                 method=type(model).spectrogram)
  arrays = {'alphabet': np.array(recognizer.alphabet), 'references': np.array(references),
            **{f'hyp_{name}': np.array(h) for name, h in hypotheses.items()}}
  for i, logp in enumerate(posteriors):
    arrays[f'posteriors_{i}'] = logp.astype(np.float32)
    arrays[f'spectrogram_{i}'] = np.asarray(features[i, :int(frames[i])], np.float32)
  np.savez_compressed(os.path.join(out, 'examples.npz'), **arrays)

"""A finished speech run's decoders: the model's per-frame log posteriors, greedy decoding, and
beam search with the character n-gram language model of its training transcripts.

    recognizer = Recognizer.load('workdirs/deepspeech_speech')
    recognizer.transcribe(waveform)            # float32 [samples] in [-1, 1) -> str
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from research import api, data
from research.core import char_lm, ctc_beam
from research.errors import UserError
from research.rundir import layout

LM_ORDER = 5
BEAM = 8
# Shallow-fusion weights used when not tuned on the validation split (research/speech/evaluate.py).
ALPHA, BETA = 0.5, 1.0


def recorded_sample_rate(workdir: str) -> int:
  """The sample rate a finished speech run was trained on, from its dataset.json alone (so a
  bad audio file is refused before any model is built); UserError for another kind of run."""
  if not layout.is_run(workdir):
    raise UserError(f"{workdir!r} is not a research workdir (no {layout.CONFIG})")
  record = layout.dataset(workdir) or {}
  if not record.get('sample_rate') or not record.get('alphabet'):
    raise UserError(f"workdir {workdir!r} did not train on speech (its dataset "
                    f"{record.get('name')!r} has no alphabet and sample rate); transcribe needs "
                    "a model trained with task='ctc' on a speech dataset")
  return int(record['sample_rate'])


def texts(labels: np.ndarray, lengths: np.ndarray, alphabet: str) -> list[str]:
  """Transcripts of label rows [n, L] (1..len(alphabet)) with their lengths [n]."""
  return [''.join(alphabet[k - 1] for k in row[:n]) for row, n in zip(labels, lengths)]


@dataclasses.dataclass
class Recognizer:
  run: api.LoadedRun
  alphabet: str
  sample_rate: int
  lm: char_lm.CharLM | None = None

  @classmethod
  def load(cls, workdir: str, step: int | None = None) -> 'Recognizer':
    run = api.load_run(workdir, step)
    info = run.dataset.info
    if run.config.task != 'ctc' or not info.alphabet:
      raise UserError(f"workdir {workdir!r} holds a {run.config.task!r} model of dataset "
                      f"{info.name!r}; transcribe needs a speech model trained with task='ctc'")
    outputs = run.params['readout']['bias'].shape[0]
    if outputs != len(info.alphabet) + 1:
      raise UserError(f"the checkpoint in {workdir!r} predicts {outputs} labels but its dataset's "
                      f"alphabet has {len(info.alphabet)} characters and the blank: they must "
                      "match")
    # The dataset as prepared now must be the one the checkpoint was trained on (its alphabet,
    # sample rate, splits): opening it compares them with the run's dataset.json.
    run.dataset.prepared  # pylint: disable=pointless-statement
    return cls(run=run, alphabet=info.alphabet, sample_rate=int(info.sample_rate))

  def language_model(self) -> char_lm.CharLM:
    """The character LM of the training split's transcripts (opens the data once)."""
    if self.lm is None:
      sentences = []
      for batch in data.eval_batches(self.run.dataset, 'train', 512):
        real = batch['mask']
        sentences += texts(batch['transcript'][real], batch['transcript_length'][real],
                           self.alphabet)
      self.lm = char_lm.CharLM.fit(sentences, self.alphabet, LM_ORDER)
    return self.lm

  @functools.cached_property
  def _apply(self):
    return jax.jit(lambda params, audio, length: self.run.model.apply(
        {'params': params}, {'audio': audio, 'length': length}, train=False))

  def log_probs(self, audio: np.ndarray, length: np.ndarray) -> list[np.ndarray]:
    """Per utterance of a padded batch [n, samples]: float64 [real frames, labels] log
    posteriors."""
    out = self._apply(self.run.params, jnp.asarray(audio, jnp.float32),
                      jnp.asarray(length, jnp.int32))
    logp = np.asarray(jax.nn.log_softmax(out['logits'], -1), np.float64)
    frames = (np.asarray(out['paddings']) < 0.5).sum(1)
    return [row[:n] for row, n in zip(logp, frames)]

  def decode(self, log_probs: np.ndarray, decoder: str = 'beam', alpha: float = ALPHA,
             beta: float = BETA) -> str:
    if decoder == 'greedy':
      return ctc_beam.greedy(log_probs, self.alphabet)
    return ctc_beam.decode(log_probs, self.alphabet, beam=BEAM, lm=self.language_model(),
                           alpha=alpha, beta=beta)

  def transcribe(self, waveform: np.ndarray, decoder: str = 'beam') -> str:
    """The transcript of one waveform, float32 [samples] at `sample_rate`."""
    (log_probs,) = self.log_probs(waveform[None, :], np.array([len(waveform)]))
    return self.decode(log_probs, decoder)

"""The `ctc` task: speech recognition with connectionist temporal classification (Graves 2006).

Batches (research/data/speech_encoding.py) hold a padded waveform 'input' with 'input_length'
and character labels 'transcript' (1..len(alphabet); 0 is the CTC blank and pads) with
'transcript_length'. The model reads {'audio', 'length'} and returns {'logits': [B, T, 1 +
len(alphabet)], 'paddings': [B, T]} (1.0 on output frames past the utterance), and the loss is
optax's `ctc_loss` per utterance (−log p(transcript | audio), summed over all alignments).

Metric (sum, count) pairs, exact over a split because they are sums of integers:
  loss  CTC loss per utterance
  cer   character edit distances of the greedy transcripts / reference characters
  wer   word edit distances (research/core/edit_distance.py) / reference words
cer and wer are computed on evaluation batches (those with a 'mask'), not in training steps,
where the decoding's sequential edit-distance scans would slow every step; training windows
report the loss.
`config.loss` is not read: this task's loss is CTC. Greedy decoding (`greedy`) takes each
frame's most likely label, merges repeats and drops blanks; beam search with a character
language model runs on the host (research/core/ctc_beam.py).
"""
import jax
import jax.numpy as jnp
import optax

from research.core import edit_distance, metric_sums

BLANK = 0


def prepare(batch: dict, examples: jnp.ndarray) -> tuple[dict, dict]:
  """(model inputs {'audio', 'length'}, targets {'labels', 'label_lengths', 'weights',
  'examples'})."""
  inputs = {'audio': batch['input'], 'length': batch['input_length']}
  return inputs, {'labels': batch['transcript'], 'label_lengths': batch['transcript_length'],
                  'weights': examples, 'examples': examples, 'decode': 'mask' in batch}


def greedy(logits: jnp.ndarray, paddings: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(int32 [B, T] labels of the greedy transcripts, left-aligned and 0-padded; int32 [B]
  lengths) of logits [B, T, V] whose frames with paddings 1.0 are ignored."""
  best = jnp.where(paddings > 0.5, BLANK, logits.argmax(-1)).astype(jnp.int32)
  previous = jnp.concatenate([jnp.full(best[:, :1].shape, BLANK), best[:, :-1]], axis=1)
  emit = (best != BLANK) & (best != previous)
  slot = jnp.where(emit, jnp.cumsum(emit, axis=1) - 1, best.shape[1])  # Past the end: dropped.
  out = jnp.zeros((best.shape[0], best.shape[1] + 1), jnp.int32)
  out = out.at[jnp.arange(best.shape[0])[:, None], slot].set(best)
  return out[:, :-1], emit.sum(1).astype(jnp.int32)


def error_sums(hyp, hyp_len, ref, ref_len, weights, space: int) -> dict:
  """{'cer': (edits, characters), 'wer': (edits, words)} over the utterances with weight 1."""
  chars = edit_distance.distance(hyp, hyp_len, ref, ref_len)
  hyp_words, hyp_count = edit_distance.words(hyp, hyp_len, space)
  ref_words, ref_count = edit_distance.words(ref, ref_len, space)
  word_edits = edit_distance.distance(hyp_words, hyp_count, ref_words, ref_count)
  f = lambda x: (x * weights).sum()  # pylint: disable=unnecessary-lambda-assignment
  return {'cer': (f(chars.astype(jnp.float32)), f(ref_len.astype(jnp.float32))),
          'wer': (f(word_edits.astype(jnp.float32)), f(ref_count.astype(jnp.float32)))}


def loss_and_sums(outputs: dict, targets: dict, space: int) -> tuple[jnp.ndarray, dict]:
  """The mean CTC loss over real utterances and the metric sums (module docstring).
  `space`: the label of ' ' (word boundaries for the WER)."""
  logits, paddings = outputs['logits'].astype(jnp.float32), outputs['paddings']
  labels, lengths = targets['labels'], targets['label_lengths']
  weights = targets['weights'].astype(jnp.float32)
  label_paddings = (jnp.arange(labels.shape[1])[None, :] >= lengths[:, None]).astype(jnp.float32)
  per_utterance = optax.ctc_loss(logits, paddings, labels, label_paddings, blank_id=BLANK)
  # Padding utterances (eval) have no frames and no labels: their loss is 0 but keep it finite.
  per_utterance = jnp.where(weights > 0, per_utterance, 0.0)
  count = weights.sum()
  sums = {'loss': ((per_utterance * weights).sum(), count), 'count': targets['examples'].sum()}
  if targets.get('decode', True):  # Evaluation (see the module docstring).
    hyp, hyp_len = greedy(jax.lax.stop_gradient(logits), paddings)
    sums.update(error_sums(hyp, hyp_len, labels, lengths, weights, space))
  return (per_utterance * weights).sum() / jnp.maximum(count, 1.0), sums


def summarize(sums: dict) -> dict:
  """Host-side means: loss per utterance, cer and wer as ratios of summed counts."""
  return metric_sums.means(sums)

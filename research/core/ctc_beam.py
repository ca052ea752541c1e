"""CTC prefix beam search with an optional character language model (host-side, NumPy).

The prefix beam search of Hannun et al. (2014, "First-pass large vocabulary continuous speech
recognition using bi-directional recurrent DNNs"): each prefix keeps the log probability of the
frames so far ending in a blank (p_b) and in its last label (p_nb), so that repeated labels
merge unless a blank separates them, as CTC defines. Appending a character c to prefix y adds
`alpha · log P_lm(c | y) + beta` (shallow fusion with a length bonus); the end of the utterance
adds `alpha · log P_lm(end | y)`. With `lm=None` or alpha = 0 it is plain CTC beam search.

Frames' labels with log probability below `prune` are skipped (CTC posteriors are peaky): a
few candidates per frame keep decoding in Python fast.
"""
import math

import numpy as np

from research.core import char_lm as char_lm_lib

BLANK = 0
NEG_INF = -math.inf


def _add(a: float, b: float) -> float:
  if a == NEG_INF:
    return b
  if b == NEG_INF:
    return a
  high, low = (a, b) if a > b else (b, a)
  return high + math.log1p(math.exp(low - high))


def decode(log_probs: np.ndarray, alphabet: str, *, beam: int = 16,
           lm: char_lm_lib.CharLM | None = None, alpha: float = 0.5, beta: float = 1.0,
           prune: float = -8.0) -> str:
  """The best transcript of log_probs [frames, 1 + len(alphabet)] (real frames only; label 0
  is the blank, label i the alphabet's character i − 1)."""
  beams = {'': (0.0, NEG_INF)}  # prefix -> (log p ending in blank, ... in its last label)

  def extend(prefix: str, char: str) -> float:
    if lm is None or alpha == 0:
      return beta
    return alpha * lm.logprob(prefix, char) + beta

  for frame in np.asarray(log_probs, np.float64):
    candidates = [int(k) for k in np.flatnonzero(frame > prune)]
    if BLANK not in candidates:
      candidates.append(BLANK)
    following: dict[str, list[float]] = {}

    def slot(prefix: str) -> list[float]:
      entry = following.get(prefix)
      if entry is None:
        entry = following[prefix] = [NEG_INF, NEG_INF]
      return entry

    for prefix, (p_b, p_nb) in beams.items():
      total = _add(p_b, p_nb)
      for label in candidates:
        p = frame[label]
        if label == BLANK:
          entry = slot(prefix)
          entry[0] = _add(entry[0], total + p)
          continue
        char = alphabet[label - 1]
        extended = prefix + char
        if prefix and prefix[-1] == char:
          entry = slot(prefix)  # The repeat merges with the prefix's last label...
          entry[1] = _add(entry[1], p_nb + p)
          entry = slot(extended)  # ...unless a blank came between.
          entry[1] = _add(entry[1], p_b + p + extend(prefix, char))
        else:
          entry = slot(extended)
          entry[1] = _add(entry[1], total + p + extend(prefix, char))
    ranked = sorted(following.items(), key=lambda item: -_add(*item[1]))[:beam]
    beams = {prefix: tuple(scores) for prefix, scores in ranked}

  def final(item) -> float:
    prefix, scores = item
    end = alpha * lm.logprob(prefix, char_lm_lib.END) if lm is not None and alpha else 0.0
    return _add(*scores) + end

  return max(beams.items(), key=final)[0]


def greedy(log_probs: np.ndarray, alphabet: str) -> str:
  """Each frame's best label, repeats merged, blanks dropped (as research/core/ctc.py's greedy)."""
  best = np.asarray(log_probs).argmax(-1)
  out, previous = [], BLANK
  for label in best:
    if label != BLANK and label != previous:
      out.append(alphabet[label - 1])
    previous = label
  return ''.join(out)

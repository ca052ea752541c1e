"""A character n-gram language model with interpolated Witten-Bell smoothing, for CTC beam search.

Estimated from the training transcripts (`CharLM.fit`): every sentence is preceded by `order − 1`
start markers and followed by an end marker, and

  P(c | h) = (C(h c) + T(h) · P(c | h')) / (C(h) + T(h)),

where h' is h without its oldest character, C counts n-grams, T(h) is the number of distinct
characters seen after h, and the order-0 model is uniform over the alphabet and the end marker.
Every probability is positive, and they sum to one over the alphabet and the end marker.
"""
import collections
import math
from typing import Iterable

START, END = '\x02', '\x03'


class CharLM:
  """`logprob(history, char)`: the natural log of P(char | the last order − 1 of history)."""

  def __init__(self, order: int, alphabet: str, counts: dict):
    self.order, self.alphabet = order, alphabet
    self._counts = counts  # history (str, up to order − 1 chars) -> Counter of next chars.
    self._cache: dict[tuple[str, str], float] = {}

  @classmethod
  def fit(cls, sentences: Iterable[str], alphabet: str, order: int = 5) -> 'CharLM':
    if order < 1:
      raise ValueError(f'order must be >= 1, got {order}')
    counts = collections.defaultdict(collections.Counter)
    for sentence in sentences:
      text = START * (order - 1) + ''.join(c for c in sentence if c in alphabet) + END
      for i in range(order - 1, len(text)):
        for k in range(order):
          counts[text[i - k:i]][text[i]] += 1
    return cls(order, alphabet, dict(counts))

  def _probability(self, history: str, char: str) -> float:
    if len(history) == 0:
      uniform = 1.0 / (len(self.alphabet) + 1)
      seen = self._counts.get('')
      if not seen:
        return uniform
      total, types = sum(seen.values()), len(seen)
      return (seen[char] + types * uniform) / (total + types)
    lower = self._probability(history[1:], char)
    seen = self._counts.get(history)
    if not seen:
      return lower
    total, types = sum(seen.values()), len(seen)
    return (seen[char] + types * lower) / (total + types)

  def logprob(self, history: str, char: str) -> float:
    """log P(char | history); `history` is the text so far (start markers are added)."""
    context = (START * (self.order - 1) + history)[-(self.order - 1):] if self.order > 1 else ''
    key = (context, char)
    value = self._cache.get(key)
    if value is None:
      value = self._cache[key] = math.log(self._probability(context, char))
    return value

  def sentence_logprob(self, text: str) -> float:
    """log P(text, then the end marker)."""
    return sum(self.logprob(text[:i], c) for i, c in enumerate(text + END))

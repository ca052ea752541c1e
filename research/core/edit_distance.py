"""Levenshtein distances between padded label sequences, in JAX, and word sequences of text.

`distance(hyp, hyp_len, ref, ref_len)` runs the dynamic programme row by row over the
hypothesis (`lax.scan`), each row vectorized over the reference: with c[j] the best of
substitution / match (from the previous row's j−1) and deletion (the previous row's j), the
row's insertions chain left to right, d[j] = min_k<=j (c[k] + j − k), which is a cumulative
minimum of c[k] − k. So a batch's distances cost hyp_len steps of O(B·ref_len) work.

Word error rates compare words, not characters: `words` turns character labels into one
integer per word (two independent polynomial hashes of its characters, so that distinct words
differ with overwhelming probability) with the number of words; `distance` compares items by all
their components.
"""
import jax
import jax.numpy as jnp

_HASH_BASES = (131, 257)
# A prime below 2**16: a term (label + 1) · power stays below 2**24 and a word's sum of terms
# fits int32. Two hashes: distinct words collide with probability about 1 / 65521².
_HASH_MODULUS = 65_521


def distance(hyp: jnp.ndarray, hyp_len: jnp.ndarray, ref: jnp.ndarray,
             ref_len: jnp.ndarray) -> jnp.ndarray:
  """int32 [B] edit distances (insertions, deletions, substitutions cost 1).

  hyp: [B, H] or [B, H, K] items (K components compared together), the first hyp_len [B] real;
  ref: [B, R] or [B, R, K], the first ref_len [B] real. Items past a length are ignored.
  """
  if hyp.ndim == 2:
    hyp, ref = hyp[..., None], ref[..., None]
  batch, reference = ref.shape[0], ref.shape[1]
  j = jnp.arange(reference + 1, dtype=jnp.int32)[None, :]
  first = jnp.broadcast_to(j, (batch, reference + 1))

  def row(previous, i):
    item = hyp[:, i - 1]  # [B, K]
    differs = jnp.any(item[:, None, :] != ref, axis=-1).astype(jnp.int32)  # [B, R]
    best = jnp.minimum(previous[:, :-1] + differs, previous[:, 1:] + 1)
    c = jnp.concatenate([previous[:, :1] + 1, best], axis=1)
    current = jax.lax.cummin(c - j, axis=1) + j
    return jnp.where((i <= hyp_len)[:, None], current, previous), None

  last, _ = jax.lax.scan(row, first, jnp.arange(1, hyp.shape[1] + 1, dtype=jnp.int32))
  return jnp.take_along_axis(last, ref_len[:, None].astype(jnp.int32), axis=1)[:, 0]


def words(labels: jnp.ndarray, lengths: jnp.ndarray, space: int
          ) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(int32 [B, N, 2] one hash pair per word, int32 [B] word counts) of character labels
  [B, N] whose first `lengths` are real; words are maximal runs of non-`space` labels."""
  batch, n = labels.shape
  position = jnp.arange(n)[None, :]
  letter = (position < lengths[:, None]) & (labels != space)
  before = jnp.concatenate([jnp.zeros((batch, 1), bool), letter[:, :-1]], axis=1)
  start = letter & ~before
  word = jnp.cumsum(start, axis=1) - 1  # Index of the word each letter is in.
  word_start = jax.lax.cummax(jnp.where(start, position, 0), axis=1)
  offset = position - word_start
  hashes = []
  for base in _HASH_BASES:
    powers = jnp.asarray([pow(base, k, _HASH_MODULUS) for k in range(n)], jnp.int32)
    term = jnp.where(letter, (labels.astype(jnp.int32) + 1) * powers[offset], 0)
    index = jnp.where(letter, word, n)  # Non-letters go to a dropped slot.
    summed = jnp.zeros((batch, n + 1), jnp.int32).at[jnp.arange(batch)[:, None], index].add(term)
    hashes.append(summed[:, :n] % _HASH_MODULUS)
  return jnp.stack(hashes, axis=-1), start.sum(1).astype(jnp.int32)


def host_distance(a, b) -> int:
  """The edit distance of two Python sequences (host reference and beam-search scoring)."""
  previous = list(range(len(b) + 1))
  for i, x in enumerate(a, 1):
    current = [i]
    for j, y in enumerate(b, 1):
      current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
    previous = current
  return previous[-1]

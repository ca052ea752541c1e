"""Byte-level tokens: a text is its UTF-8 bytes, so no vocabulary needs downloading.

Two byte values that never occur in the bundled text are reserved: 0 pads a sequence to its
fixed length, and 1 (ASCII SOH) replaces a token hidden by the masked-language-model objective.
"""
import numpy as np

VOCAB_SIZE = 256
PAD = 0
MASK = 1


def encode(text: str, length: int | None = None) -> np.ndarray:
  """UTF-8 bytes of `text` as int32 tokens, right-padded with PAD (or cut) to `length`."""
  tokens = np.frombuffer(text.encode('utf-8'), dtype=np.uint8).astype(np.int32)
  if length is None:
    return tokens
  out = np.full((length,), PAD, np.int32)
  out[:min(length, len(tokens))] = tokens[:length]
  return out


def decode(tokens) -> str:
  """The text of `tokens`, stopping at the first PAD."""
  tokens = np.asarray(tokens).astype(np.int64).ravel()
  end = np.flatnonzero(tokens == PAD)
  tokens = tokens[:end[0]] if end.size else tokens
  return bytes(int(t) for t in tokens if t != MASK).decode('utf-8', errors='replace')

"""Autoregressive sampling from the GPT model, and the exact-match check of its answers.

Prompts sit right-padded in one fixed [B, T] buffer with per-example lengths, so a batch mixes
prompts of different lengths and every shape stays static (one compilation). Decoding keeps a
key/value cache (research/models/attention.py): one forward pass over the whole buffer fills it
and gives each example's first new token, then each step feeds every example's newest token at
its own position, O(T) attention work per token instead of a full O(T²) pass. Causal attention
makes it exact: the cached keys past a position are never attended to, so the logits equal a
full forward pass over the buffer up to float rounding (tests/test_models_transformer.py).
"""
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from research.core import tokens as tokens_lib


def _next_token(logits, rng, step, temperature: float, top_k: int | None):
  """[B, V] logits → [B] tokens: argmax when greedy, else a top-k/temperature sample."""
  if top_k is not None:
    kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if rng is None or temperature == 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  key = jax.random.fold_in(rng, step)
  return jax.random.categorical(key, logits / temperature, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=('model', 'max_new_tokens', 'temperature', 'top_k'))
def generate(model: nn.Module, params: Any, prompt_tokens: jnp.ndarray,
             prompt_lengths: jnp.ndarray, max_new_tokens: int, *, rng: jax.Array | None = None,
             temperature: float = 1.0, top_k: int | None = None,
             steps: jax.Array | None = None) -> jnp.ndarray:
  """Continues each prompt with `max_new_tokens` sampled tokens; returns the [B, T] buffer.

  Args:
    model: a GPT `Model` (per-token next-token logits [B, T, V], causal; its `decode` mode
      keeps the key/value cache).
    params: the model's 'params' collection (not the {'params': ...} variables dict).
    prompt_tokens: int [B, T]; example b's prompt is prompt_tokens[b, :prompt_lengths[b]].
      Anything after the prompt (e.g. the reference answer) is replaced with PAD first.
    prompt_lengths: int [B], each >= 1 (the first token is conditioned on the prompt's last).
    max_new_tokens: tokens to write after each prompt; those that would fall at or beyond T are
      dropped, so the buffer must be long enough (and T <= the model's max_len).
    rng: PRNG key for sampling; None means greedy decoding.
    temperature: logits are divided by it before sampling; 0 means greedy. A Python number.
    top_k: if set, sample only among the k most likely tokens (top_k=1 is greedy).
    steps: if given (an int, traced or not), only the first `steps` of the max_new_tokens are
      written: a bound known per batch, e.g. `steps_to_compare`, without recompiling.

  Returns:
    int32 [B, T]: the prompts, each followed by its generated tokens, then PAD. Nothing stops at
    a generated PAD: exactly max_new_tokens tokens are written (see `answer_exact_match`).

  Jitted with model, max_new_tokens, temperature and top_k static (Flax modules hash by their
  fields), so repeated calls with the same shapes reuse one compilation; it also nests inside an
  outer jit. The loop over steps is a lax.fori_loop, so the forward pass is compiled once.
  """
  buffer = jnp.asarray(prompt_tokens, jnp.int32)
  lengths = jnp.asarray(prompt_lengths, jnp.int32)
  length = buffer.shape[1]
  positions = jnp.arange(length)[None, :]
  buffer = jnp.where(positions < lengths[:, None], buffer, tokens_lib.PAD)
  decoder = model.clone(decode=True)
  end = max_new_tokens if steps is None else jnp.minimum(steps, max_new_tokens)

  def emit(i, logits, buffer):
    """Token i from the logits at position lengths + i - 1, written at lengths + i (writes at
    or past the end match no column and are dropped)."""
    token = _next_token(logits, rng, i, temperature, top_k)
    write = (positions == (lengths + i)[:, None]) & (i < end)
    return jnp.where(write, token[:, None], buffer), token

  logits, cache = decoder.apply({'params': params}, buffer,
                                positions=jnp.broadcast_to(positions, buffer.shape),
                                mutable=['cache'])
  last = jnp.clip(lengths - 1, 0, length - 1)
  buffer, token = emit(0, jnp.take_along_axis(logits, last[:, None, None], axis=1)[:, 0], buffer)

  def step(i, carry):
    buffer, cache, token = carry
    # The previous token, at its own position (clipped once an example runs off the buffer:
    # everything it generates after that is dropped anyway).
    at = jnp.clip(lengths + i - 1, 0, length - 1)[:, None]
    logits, cache = decoder.apply({'params': params, **cache}, token[:, None], positions=at,
                                  mutable=['cache'])
    buffer, token = emit(i, logits[:, 0], buffer)
    return buffer, cache, token

  return jax.lax.fori_loop(1, end, step, (buffer, cache, token))[0]


def steps_to_compare(reference_tokens, prompt_lengths) -> int:
  """How many generated tokens `answer_exact_match` looks at in this batch (host numpy).

  It compares example b's positions L_b..e_b (e_b: the reference's first PAD after the prompt,
  or the last position), so generating e_b − L_b + 1 tokens for the longest answer gives the
  same verdicts as generating to the end of the buffer: later tokens are never compared and,
  attention being causal, cannot change earlier ones. For `addition` that is 4–5 tokens
  instead of 15."""
  reference = np.asarray(reference_tokens)
  lengths = np.asarray(prompt_lengths)[:, None]
  positions = np.arange(reference.shape[1])[None, :]
  pads = (positions >= lengths) & (reference == tokens_lib.PAD)
  last = reference.shape[1] - 1
  end = np.where(pads.any(axis=1), np.argmax(pads, axis=1), last)
  return int(max(1, (np.minimum(end, last) - lengths[:, 0] + 1).max()))


def answer_exact_match(generated: jnp.ndarray, reference_tokens: jnp.ndarray,
                       prompt_lengths: jnp.ndarray, require_end: bool = True) -> jnp.ndarray:
  """Per-example bool [B]: did the generation reproduce the reference continuation exactly?

  The reference continuation of example b is reference_tokens[b, L:e], L = prompt_lengths[b] and
  e its first PAD at or after L (or T). With `require_end` the generated token at e must be PAD
  too, i.e. the model must also stop: '5790' does not match '579'. That check passes without a
  generated PAD when generation stopped exactly at e, since `generate` leaves unwritten positions
  PAD. Positions before L (the prompt) are not compared.
  """
  generated = jnp.asarray(generated)
  reference = jnp.asarray(reference_tokens)
  lengths = jnp.asarray(prompt_lengths)[:, None]
  positions = jnp.arange(reference.shape[1])[None, :]
  after = positions >= lengths
  pads = after & (reference == tokens_lib.PAD)
  end = jnp.where(pads.any(axis=1, keepdims=True), jnp.argmax(pads, axis=1, keepdims=True),
                  reference.shape[1])
  compared = after & ((positions <= end) if require_end else (positions < end))
  return jnp.all((generated == reference) | ~compared, axis=1)

"""Autoregressive sampling from the GPT model, and the exact-match check of its answers.

Prompts sit right-padded in one fixed [B, T] buffer with per-example lengths, so a batch mixes
prompts of different lengths and every shape stays static (one compilation). Each step runs the
full forward pass over the whole buffer and reads the logits at each example's last written
position. That costs T forward passes of O(T²) attention per generation instead of a KV cache's
O(T) work per token, which is acceptable for the small models and short sequences here and keeps
the model free of a separate decoding mode. Causal attention makes it exact: positions after the
one read cannot affect its logits.
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
    model: a GPT `Model` (per-token next-token logits [B, T, V], causal).
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

  def step(i, buffer):
    last = jnp.clip(lengths + i - 1, 0, length - 1)  # Position whose logits predict token i.
    logits = model.apply({'params': params}, buffer, train=False)
    logits = jnp.take_along_axis(logits, last[:, None, None], axis=1)[:, 0]
    token = _next_token(logits, rng, i, temperature, top_k)
    # Writes past the end (position >= T) match no column and are dropped.
    write = positions == (lengths + i)[:, None]
    return jnp.where(write, token[:, None], buffer)

  end = max_new_tokens if steps is None else jnp.minimum(steps, max_new_tokens)
  return jax.lax.fori_loop(0, end, step, buffer)


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

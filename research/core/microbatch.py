"""Gradient accumulation: one optimizer step from several micro-batches, to fit a large batch.

The batch is cut into `n` micro-batches with a stride (micro-batch i holds rows i, i+n, i+2n...),
so that under a mesh each device keeps its own rows and no data moves. Each micro-batch's
gradient is of the *summed* weighted loss; the sum over micro-batches divided by the total weight
is exactly the gradient of the big batch's weighted-mean loss (the same for token tasks, where
micro-batches hold different numbers of real tokens). `lax.scan` runs the micro-batches one
after another, so only one micro-batch's activations are alive at a time.

BatchNorm statistics are updated micro-batch by micro-batch (as several small steps would).
"""
from typing import Any, Callable

import jax
import jax.numpy as jnp


def split(batch: dict, n: int) -> dict:
  """[B, ...] arrays → [n, B/n, ...], micro-batch i = rows i::n."""
  def cut(x):
    x = x.reshape((x.shape[0] // n, n) + x.shape[1:])
    return jnp.swapaxes(x, 0, 1)
  return jax.tree.map(cut, batch)


def accumulate(sum_gradients: Callable, params: Any, batch_stats: Any, batch: dict, n: int,
               rng: jax.Array, axis_name: str | None = None) -> tuple[Any, dict, Any]:
  """Gradients of the weighted-mean loss over `batch`, computed `n` micro-batches at a time.

  `sum_gradients(params, batch_stats, micro_batch, rng)` returns (gradients of the summed
  weighted loss, metric sums whose 'loss' is a (sum, weight) pair, new batch_stats).
  Returns (mean gradients, summed metric sums, batch_stats). With `axis_name` (pmap), gradient
  and metric sums are added across devices before dividing by the total weight.
  """
  def body(carry, xs):
    grads, sums, stats = carry
    micro, index = xs
    g, s, stats = sum_gradients(params, stats, micro, jax.random.fold_in(rng, index))
    grads = jax.tree.map(jnp.add, grads, g)
    sums = s if sums is None else jax.tree.map(jnp.add, sums, s)
    return (grads, sums, stats), None

  micro_batches = split(batch, n)
  first = jax.tree.map(lambda x: x[0], micro_batches)
  grads, sums, stats = sum_gradients(params, batch_stats, first, jax.random.fold_in(rng, 0))
  rest = jax.tree.map(lambda x: x[1:], micro_batches)
  (grads, sums, stats), _ = jax.lax.scan(body, (grads, sums, stats),
                                         (rest, jnp.arange(1, n)))
  if axis_name is not None:
    grads, sums = jax.lax.psum((grads, sums), axis_name)
  weight = jnp.maximum(sums['loss'][1], 1.0)
  return jax.tree.map(lambda g: g / weight, grads), sums, stats

"""Several training steps per dispatch (`config.steps_per_dispatch` = k), the host side.

For small models a step is dominated by the fixed cost of launching it from Python; running k
steps in one compiled call (steps.train_steps: `lax.scan` over a stack of k batches) pays it once
per k steps. The loop then feeds [k, batch, ...] stacks and gets the k steps' metric sums back
stacked, which `per_step` turns back into one entry per step, so logging, the non-finite check and
the metric rows are the same as with k = 1. Measure before using it on CPU: XLA:CPU may pick
slower kernels inside a loop body (DESIGN.md measured a 3x slow-down for a small CNN).
"""
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from research.data import resident


def next_batches(iterator: Iterator[dict], k: int) -> dict:
  """The next batch (k = 1), or the next k batches stacked on a new leading axis."""
  if k == 1:
    return next(iterator)
  batches = [next(iterator) for _ in range(k)]
  return jax.tree.map(lambda *xs: np.stack(xs), *batches)


def per_step(host_window: list[Any], k: int) -> list[Any]:
  """A window of host metric sums, one entry per dispatch, as one entry per step."""
  if k == 1:
    return list(host_window)
  return [jax.tree.map(lambda x, i=i: x[i], sums) for sums in host_window for i in range(k)]


def resident_steps(step: Callable, max_steps: int, constrain: Callable = lambda b: b
                   ) -> Callable:
  """`step(state, batch)` run `count` times in one dispatch on batches gathered from a resident
  split: `fn(state, examples, positions [max_steps, batch], count, *rest)` -> (state, sums
  stacked [max_steps, ...]; rows past `count` are zeros), `rest` passed on to `step`; positions
  of any shape after the first axis gather batches of that shape (a group's [members, batch]).
  The trip count is traced, so one compiled program serves every dispatch length (the loop
  dispatches up to its next log / eval / checkpoint step). `constrain` places a gathered batch as the mesh splits batches."""

  def train_steps(state, examples, positions, count, *rest):  # The name profiles show.
    def batch(i):
      return constrain(resident.gather(examples, positions[i]))

    _, sums_shape = jax.eval_shape(step, state, batch(0), *rest)
    zeros = jax.tree.map(lambda s: jnp.zeros((max_steps,) + s.shape, s.dtype), sums_shape)

    def body(i, carry):
      state, stacked = carry
      state, sums = step(state, batch(i), *rest)
      return state, jax.tree.map(lambda acc, x: acc.at[i].set(x), stacked, sums)
    return jax.lax.fori_loop(0, count, body, (state, zeros))
  return train_steps


def resident_eval(eval_step: Callable, constrain: Callable = lambda b: b) -> Callable:
  """`eval_step(state, batch)` summed over a whole resident split in one dispatch:
  `fn(state, examples, positions [batches, batch], mask [batches, batch])` -> metric sums, added
  batch after batch in order, as the host path adds them."""

  def run(state, examples, positions, mask):
    def body(total, xs):
      batch = constrain({**resident.gather(examples, xs[0]), 'mask': xs[1]})
      sums = eval_step(state, batch)
      return (sums if total is None else jax.tree.map(jnp.add, total, sums)), None
    first, _ = body(None, (positions[0], mask[0]))
    total, _ = jax.lax.scan(body, first, (positions[1:], mask[1:]))
    return total
  return run


def rows(stacked: Any, count: int) -> list[Any]:
  """The first `count` rows of a dispatch's stacked host metric sums, one entry per step."""
  return [jax.tree.map(lambda x, i=i: x[i], stacked) for i in range(count)]

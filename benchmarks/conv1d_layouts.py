"""The MNIST-1D CNN's convolutions on XLA:CPU: flax's nn.Conv against models/cnn.py's
WindowConv (one matmul over unfolded windows), where small runs use them (issue 14, item 3).

Command (from the repo root; asserts nothing about speed):

  .venv/bin/python benchmarks/conv1d_layouts.py [--repeats 3]

Same network (the paper's ConvBase, 5,210 parameters), batch 100, Adam 1e-2, random inputs:
  jit       one jitted step per dispatch
  loop      50 steps in one `lax.fori_loop` (the resident data path, steps_per_dispatch > 1)
  vmap 8    8 seeds vmapped in one step (a vectorized group)
steps/s counts member-steps (vmap 8: 8 per call). Repeats are interleaved; medians shown.
"""
import argparse
import os
import statistics
import time

import jax
import numpy as np
import optax
from flax import linen as nn

from research.models import cnn


class ConvReference(nn.Module):
  """The ConvBase with flax's nn.Conv (how models/cnn.py wrote it before)."""

  @nn.compact
  def __call__(self, inputs):
    x = inputs[..., None]
    for kernel in (5, 3, 3):
      x = nn.relu(nn.Conv(25, (kernel,), strides=(2,), padding=((1, 1),))(x))
    return nn.Dense(10)(x.reshape((x.shape[0], -1)))


def measure(model, mode, members=8, calls=100, loop_steps=50):
  tx = optax.adam(1e-2)
  x = np.random.RandomState(0).randn(100, 40).astype(np.float32)
  y = np.random.RandomState(1).randint(0, 10, 100)

  def init(key):
    params = model.init(key, x)
    return params, tx.init(params)

  def step(carry, _):
    params, opt = carry
    grads = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(
        model.apply(p, x), y).mean())(params)
    updates, opt = tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), opt)

  key = jax.random.PRNGKey(0)
  if mode == 'jit':
    carry, call, per_call = init(key), jax.jit(lambda c: step(c, None)), 1
  elif mode == 'loop':
    carry, per_call = init(key), loop_steps
    call = jax.jit(lambda c: jax.lax.fori_loop(0, loop_steps, lambda i, c: step(c, i), c))
    calls = max(2, calls // 10)
  else:
    carry = jax.vmap(init)(jax.random.split(key, members))
    call, per_call = jax.jit(jax.vmap(lambda c: step(c, None))), members
  carry = call(carry)
  jax.block_until_ready(carry)
  tic = time.perf_counter()
  for _ in range(calls):
    carry = call(carry)
  jax.block_until_ready(carry)
  return calls * per_call / (time.perf_counter() - tic)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  models = {'nn.Conv': ConvReference(), 'WindowConv': cnn.Model(num_outputs=10, variant='1d')}
  results = {}
  print('load before:', os.getloadavg())
  for _ in range(args.repeats):
    for mode in ('jit', 'loop', 'vmap 8'):
      for name, model in models.items():
        results.setdefault((mode, name), []).append(measure(model, mode))
  print('load after:', os.getloadavg())
  print('\n| mode | nn.Conv steps/s | WindowConv steps/s | ratio |\n|:--|--:|--:|--:|')
  for mode in ('jit', 'loop', 'vmap 8'):
    conv, window = (statistics.median(results[(mode, n)]) for n in models)
    print(f'| {mode} | {conv:,.0f} | {window:,.0f} | {window / conv:.2f}x |')


if __name__ == '__main__':
  main()

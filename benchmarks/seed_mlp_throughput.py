"""Seed MLP training throughput: the `research` runner against a minimal hand-written JAX loop.

Command (from the repo root; ~40 s on the 2-core CPU; it asserts nothing about speed):

  .venv/bin/python benchmarks/seed_mlp_throughput.py [--steps N] [--data-dir DIR] [--json PATH]

The network is the seed's (MLP 784-128-64-10, ReLU, cross-entropy, SGD lr 0.01) on real 28x28
MNIST pixels, `configs/seed_mlp.py:dataset=mnist_idx` (../shared/data/mnist-t10k); if that folder
is missing it falls back to `dataset=digits` (8x8, so a 64-wide input) and says so. TFDS data_dir:
--data-dir, else $TFDS_DATA_DIR, else a temporary folder. --steps N sets the steps of every timed
run (default: 5000 at batch 128 and 1000 at batch 1024, a few seconds each).

Rows (paths), per batch size:
  runner     research.train_and_evaluate in a temp workdir (num_devices=1, eval and checkpoint once,
             at the end): its summary's steps_per_second, which excludes compile, eval and
             checkpoint time but includes the metric fetch every log_every=50 steps.
  hand       a plain jax.jit step (own flax MLP, optax cross-entropy, optax.sgd(0.01), state
             donated) cycling over one epoch of batches from research.data.train_iterator, put on
             the device beforehand; timed after warm-up, block_until_ready at the end.
  hand+iter  diagnostic: that step fed by train_iterator + device_put every step, as the runner
             is fed; hand+iter against hand is the input pipeline's cost.
Columns: steps/s and examples/s (steps x batch) per second; GFLOP/s = steps/s x the FLOPs of one
step by XLA's cost analysis of the compiled hand step; MFU = GFLOP/s / the fp32 matmul peak
measured at start-up (best of several jitted 2048x2048 jnp.dot); MFU(6BP) = the same with the
analytic 6*B*P FLOPs, P = weight entries (109,184), which also counts the first layer's input
gradient that XLA skips; vs hand = steps/s / the hand row's (runner/hand: the runner's overhead).
A row whose run raises shows n/a, and the error is printed above the table.
"""
import argparse
import itertools
import json
import logging
import math
import os
import pathlib
import platform
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import optax
import tensorflow_datasets as tfds
from flax import linen as nn

import research
from research import config as config_lib, data

REPO = pathlib.Path(__file__).resolve().parent.parent
CONFIG = REPO / 'configs' / 'seed_mlp.py'
BATCH_SIZES = (128, 1024)
DEFAULT_STEPS = {128: 5000, 1024: 1000}  # ~3 s each at DESIGN.md's ~1,800 and ~370 steps/s.


class MLP(nn.Module):
  """The seed network, written out: flatten, Dense+ReLU per hidden width, Dense to logits."""
  hidden_sizes: tuple
  num_classes: int

  @nn.compact
  def __call__(self, x):
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden_sizes:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.num_classes)(x)


def seed_config(dataset, manual_dir, data_dir, batch_size, steps):
  """The seed config at `batch_size` for `steps` steps, eval/checkpoint once, one device."""
  cfg = config_lib.load(f'{CONFIG}:dataset={dataset}')
  config_lib.apply_overrides(cfg, [
      f'batch_size={batch_size}', f'total_steps={steps}', 'num_devices=1',
      f'eval_every={steps}', f'checkpoint_every={steps}'])
  cfg.dataset.data_dir = data_dir
  if manual_dir:
    cfg.dataset.manual_dir = manual_dir
  return cfg


def matmul_peak(n=2048, calls=3, trials=5):
  """Best fp32 GFLOP/s of a jitted n x n `jnp.dot` over `trials` timings of `calls` calls."""
  a, b = jax.random.normal(jax.random.PRNGKey(0), (2, n, n), jnp.float32)
  dot = jax.jit(jnp.dot)
  dot(a, b).block_until_ready()
  best = math.inf
  for _ in range(trials):
    tic = time.perf_counter()
    for _ in range(calls):
      dot(a, b).block_until_ready()
    best = min(best, (time.perf_counter() - tic) / calls)
  return 2 * n**3 / best / 1e9


def hand_step(model):
  """The jitted reference step (params, opt_state, x, y) -> (params, opt_state, loss)."""
  tx = optax.sgd(0.01)

  def step(params, opt_state, x, y):
    def loss_fn(p):
      logits = model.apply({'params': p}, x)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return tx, jax.jit(step, donate_argnums=(0, 1))


def xla_flops(step, *args):
  """FLOPs of one call of jitted `step` on `args`, from XLA's cost analysis (None if absent)."""
  cost = step.lower(*args).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):  # Older JAX: one dict per computation.
    cost = cost[0] if cost else None
  return float(cost['flops']) if cost and 'flops' in cost else None


def time_loop(step, params, opt_state, next_batch, steps):
  """Steps/s of `steps` calls of `step` on `next_batch()`, after two warm-up steps."""
  for _ in range(2):
    params, opt_state, loss = step(params, opt_state, *next_batch())
  jax.block_until_ready((params, loss))
  tic = time.perf_counter()
  for _ in range(steps):
    params, opt_state, loss = step(params, opt_state, *next_batch())
  jax.block_until_ready((params, opt_state, loss))
  return steps / (time.perf_counter() - tic)


def attempt(path, measure):
  """A row {'path', **measure()}, or one with steps_per_second None and the error."""
  try:
    return dict(path=path, **measure())
  except Exception as e:  # pylint: disable=broad-except  # Report it; go on with the others.
    return dict(path=path, steps_per_second=None, error=f'{type(e).__name__}: {e}')


def run_runner(cfg):
  with tempfile.TemporaryDirectory(prefix='seed_mlp_bench_') as workdir:
    summary = research.train_and_evaluate(cfg, workdir)
  return dict(steps_per_second=summary['steps_per_second'],
              examples_per_second=summary['examples_per_second'],
              compile_seconds=summary['compile_seconds'], wall_seconds=summary['wall_seconds'],
              test_accuracy=summary['final']['test']['accuracy'])


def bench_batch(cfg, info, steps):
  """Rows for one batch size, the (XLA, analytic) FLOPs per step, train_iterator batches/s."""
  batch = cfg.batch_size
  rows = [attempt('runner', lambda: run_runner(cfg))]
  model = MLP(tuple(cfg.model.hidden_sizes), info.num_classes)
  tx, step = hand_step(model)
  dummy = jnp.zeros((1, *info.input_shape), jnp.float32)
  fresh = lambda: model.init(jax.random.PRNGKey(cfg.seed), dummy)['params']
  iterator = data.train_iterator(cfg.dataset, batch, cfg.seed)
  epoch = [next(iterator) for _ in range(data.steps_per_epoch(info, batch))]
  on_device = [(jax.device_put(b['input']), jax.device_put(b['label'])) for b in epoch]
  jax.block_until_ready(on_device)
  params = fresh()
  flops = xla_flops(step, params, tx.init(params), *on_device[0])
  sizes = (math.prod(info.input_shape), *cfg.model.hidden_sizes, info.num_classes)
  analytic = 6 * batch * sum(a * b for a, b in zip(sizes, sizes[1:]))

  def loop(next_batch):
    params = fresh()
    return dict(steps_per_second=time_loop(step, params, tx.init(params), next_batch, steps))

  def from_iterator():
    b = next(iterator)
    return jax.device_put(b['input']), jax.device_put(b['label'])

  cycle = itertools.cycle(on_device)
  rows.append(attempt('hand', lambda: loop(lambda: next(cycle))))
  rows.append(attempt('hand+iter', lambda: loop(from_iterator)))
  tic = time.perf_counter()
  try:
    for _ in range(steps):
      next(iterator)
    iterator_alone = steps / (time.perf_counter() - tic)
  except Exception:  # pylint: disable=broad-except  # Already reported by the hand+iter row.
    iterator_alone = None
  return rows, flops, analytic, iterator_alone


def fmt(value, spec, scale=1):
  """`value * scale` formatted with `spec`, or 'n/a' (as wide) when it is None."""
  width = int(''.join(c for c in spec.split('.')[0] if c.isdigit()) or 0)
  return format(value * scale, spec) if value is not None else 'n/a'.rjust(width)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--steps', type=int, default=None,
                      help='steps per timed run (default: 5000 at batch 128, 1000 at 1024)')
  parser.add_argument('--data-dir', default=None, help='TFDS data_dir (default: $TFDS_DATA_DIR '
                      'or a temporary folder)')
  parser.add_argument('--json', default=None, metavar='PATH', help='also write results as JSON')
  args = parser.parse_args(argv)
  logging.getLogger().setLevel(logging.WARNING)
  logging.getLogger('absl').setLevel(logging.ERROR)  # TFDS's notes on preparing mnist_idx.
  tfds.disable_progress_bar()

  data_dir = args.data_dir or os.environ.get('TFDS_DATA_DIR')
  tmp = None if data_dir else tempfile.TemporaryDirectory(prefix='seed_mlp_tfds_')
  data_dir = data_dir or tmp.name
  manual_dir = (REPO / config_lib.load(f'{CONFIG}:dataset=mnist_idx').dataset.manual_dir).resolve()
  dataset, note = 'mnist_idx', f'real 28x28 MNIST from {manual_dir}'
  if not manual_dir.is_dir():
    dataset, note = 'digits', f'FALLBACK: {manual_dir} is missing; using the 8x8 digits instead'
    manual_dir = None

  peak = matmul_peak()
  device = jax.devices()[0]
  results = dict(jax=jax.__version__, python=platform.python_version(),
                 device=f'{device.platform}:{device.device_kind}', cpu_count=os.cpu_count(),
                 dataset=dataset, dataset_note=note, data_dir=data_dir,
                 matmul_peak_gflops=peak, batches=[])
  info = None
  for batch in BATCH_SIZES:
    steps = args.steps or DEFAULT_STEPS[batch]
    cfg = seed_config(dataset, manual_dir and str(manual_dir), data_dir, batch, steps)
    info = info or data.prepare(cfg.dataset)
    rows, flops, analytic, iterator_alone = bench_batch(cfg, info, steps)
    hand = rows[1]['steps_per_second']
    for row in rows:
      sps = row['steps_per_second']
      if sps is not None:
        row.setdefault('examples_per_second', sps * batch)
        row.update(vs_hand=hand and sps / hand, mfu_6bp=sps * analytic / 1e9 / peak,
                   gflops=flops and sps * flops / 1e9, mfu=flops and sps * flops / 1e9 / peak)
    results['batches'].append(dict(
        batch_size=batch, steps=steps, xla_flops_per_step=flops, analytic_flops_per_step=analytic,
        iterator_alone_batches_per_second=iterator_alone, rows=rows))
  results.update(train_examples=info.split_sizes['train'], input_shape=list(info.input_shape))

  print(f"jax {results['jax']} on {results['device']} ({results['cpu_count']} CPUs), "
        f"python {results['python']}")
  print(f"dataset: {dataset}, {info.split_sizes['train']} train examples of shape "
        f"{tuple(info.input_shape)} ({note})")
  print(f'fp32 matmul peak (jitted 2048x2048 jnp.dot, best of 5): {peak:.1f} GFLOP/s')
  for b in results['batches']:
    runner = b['rows'][0]
    print(f"batch {b['batch_size']}: {b['steps']} steps per run; FLOPs/step XLA "
          f"{fmt(b['xla_flops_per_step'], '.4g', 1e-6)} M, 6*B*P "
          f"{fmt(b['analytic_flops_per_step'], '.4g', 1e-6)} M; runner compile "
          f"{fmt(runner.get('compile_seconds'), '.2f')} s, wall "
          f"{fmt(runner.get('wall_seconds'), '.2f')} s, test accuracy "
          f"{fmt(runner.get('test_accuracy'), '.3f')}; train_iterator alone "
          f"{fmt(b['iterator_alone_batches_per_second'], ',.0f')} batches/s")
    for r in b['rows']:
      if 'error' in r:
        print(f"  {r['path']} FAILED: {r['error'].splitlines()[0]}")
  print()
  print('| batch | path      | steps/s | examples/s | GFLOP/s |   MFU | MFU(6BP) | vs hand |')
  print('|------:|:----------|--------:|-----------:|--------:|------:|---------:|--------:|')
  for b in results['batches']:
    for r in b['rows']:
      print(f"| {b['batch_size']:5d} | {r['path']:<9} | {fmt(r['steps_per_second'], '7,.0f')} | "
            f"{fmt(r.get('examples_per_second'), '10,.0f')} | {fmt(r.get('gflops'), '7.1f')} | "
            f"{fmt(r.get('mfu'), '5.1%')} | {fmt(r.get('mfu_6bp'), '8.1%')} | "
            f"{fmt(r.get('vs_hand'), '7.2f')} |")
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + '\n')
    print(f'\nwrote {args.json}')
  if tmp:
    tmp.cleanup()


if __name__ == '__main__':
  sys.exit(main())

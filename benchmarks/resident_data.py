"""Device-resident data against the host pipeline and a bare jit loop (issue 14, items 1-2).

Command (from the repo root; asserts nothing about speed):

  .venv/bin/python benchmarks/resident_data.py [--repeats 3] [--configs default,mnist1d_cnn]

For each config, with its own evaluation and checkpoint cadence (`research train` as shipped):
  runner/device  research.train_and_evaluate with dataset.placement='device'
  runner/host    the same with dataset.placement='host' (the grain iterator, one batch per step)
  bare jit       the run's own `steps.train_step`, jitted, on batches gathered on the device
                 beforehand (the same order), one dispatch per step, no eval / checkpoint / logs
Columns: steps/s (the runner's summary.json value: compile, eval and checkpoint time excluded;
bare: timed after warm-up), wall s (process-free: the call's wall time, data already prepared),
and each row's steps/s over the bare loop's. The rows run interleaved `--repeats` times and the
table shows medians; `uptime`'s load before and after is printed, since the machine is shared.
"""
import argparse
import functools
import logging
import os
import statistics
import tempfile
import time

import jax

import research
from research import config as config_lib
from research.core import steps as steps_lib
from research.data import pipeline
from research.run import parts

CONFIGS = {'default': 'configs/default.py', 'mnist1d_cnn': 'configs/mnist1d_cnn.py',
           'mnist1d_mlp': 'configs/mnist1d_mlp.py', 'mnist1d_gru': 'configs/mnist1d_gru.py'}


def _config(name, data_dir, overrides):
  cfg = config_lib.load(CONFIGS[name])
  config_lib.apply_overrides(cfg, ['num_devices=1', 'progress=none', 'tensorboard=False',
                                   *overrides])
  cfg.dataset.data_dir = data_dir
  return cfg


def runner(cfg, placement):
  cfg = cfg.copy_and_resolve_references()
  cfg.dataset.placement = placement
  with tempfile.TemporaryDirectory(prefix='resident_bench_') as workdir:
    tic = time.perf_counter()
    summary = research.train_and_evaluate(cfg, workdir)
    wall = time.perf_counter() - tic
  return summary['steps_per_second'], wall, summary['final']['test']['accuracy']


def bare(cfg):
  """The run's own step, jitted, one dispatch per step on device-resident batches."""
  exp = parts.build(cfg)
  c = exp.config
  examples, order = pipeline.train_order(exp.data, c.batch_size, c.seed)
  epoch = order.steps_per_epoch
  batches = [jax.device_put({k: v[order.positions(s)] for k, v in examples.items()})
             for s in range(min(epoch, c.total_steps))]
  step = jax.jit(functools.partial(steps_lib.train_step, task=exp.task, loss_fn=exp.loss_fn),
                 donate_argnums=0)
  state = exp.init_state()
  tic = time.perf_counter()
  state, _ = step(state, batches[0])
  jax.block_until_ready(state)
  timed = time.perf_counter()
  for s in range(1, c.total_steps):
    state, sums = step(state, batches[s % len(batches)])
  jax.block_until_ready(state)
  end = time.perf_counter()
  return (c.total_steps - 1) / (end - timed), end - tic, None


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--configs', default='default,mnist1d_cnn')
  parser.add_argument('--data-dir', default=os.environ.get('TFDS_DATA_DIR', '/tmp/tfds-bench'))
  parser.add_argument('--override', action='append', default=[])
  args = parser.parse_args()
  logging.getLogger('research').setLevel(logging.WARNING)
  print('load before:', os.getloadavg())
  results = {}
  for _ in range(args.repeats):
    for name in args.configs.split(','):
      cfg = _config(name, args.data_dir, args.override)
      for path, fn in (('runner/device', lambda: runner(cfg, 'device')),
                       ('runner/host', lambda: runner(cfg, 'host')), ('bare jit', lambda: bare(cfg))):
        results.setdefault((name, path), []).append(fn())
        print(name, path, results[(name, path)][-1], os.getloadavg()[0], flush=True)
  print('load after:', os.getloadavg())
  print("\n| config | path | steps/s | wall s | vs bare | test acc |\n|:--|:--|--:|--:|--:|--:|")
  for name in args.configs.split(','):
    base = statistics.median(r[0] for r in results[(name, 'bare jit')])
    for path in ('runner/device', 'runner/host', 'bare jit'):
      rows = results[(name, path)]
      rate, wall = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
      acc = rows[0][2]
      print(f'| {name} | {path} | {rate:,.0f} | {wall:.1f} | {rate / base:.2f} | '
            f'{"" if acc is None else f"{acc:.3f}"} |')


if __name__ == '__main__':
  main()

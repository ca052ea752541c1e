"""One-shot accelerator check: a GPT-style model in bfloat16, steps/s, MFU and peak memory.

Command (from the repo root; prints one table and asserts nothing about speed):

  .venv/bin/python benchmarks/gpu_smoke.py                     # the 'gpu' preset on a GPU/TPU
  .venv/bin/python benchmarks/gpu_smoke.py --preset tiny       # seconds on a CPU (tested)
  .venv/bin/python benchmarks/gpu_smoke.py --sharding fsdp     # all local devices, FSDP

It builds the runner's own pieces (research.models.gpt, the language-model task, optim.create,
steps.train_step compiled by placement.Placement with the chosen sharding) and trains on random
byte tokens: the numbers measure the step, not the data. Rows: one per compute dtype (bfloat16,
float32). Columns: steps/s after warm-up (timed over --steps steps, each synced), tokens/s,
TFLOP/s by XLA's cost analysis of the step, MFU against research.run.flops' peak table (a measured
matmul peak on CPU), peak device memory (memory_stats(); n/a on CPU), and the loss after the
timed steps (it must fall from ln(256) ≈ 5.55, or the check failed).
Presets: gpu = 12 layers, width 768, 12 heads, seq 1024, batch 16 per device (GPT-2 small
shape, ~85 M parameters plus embeddings); tiny = 2 layers, width 64, seq 32, batch 8.
"""
import argparse
import functools
import math
import time

import jax
import ml_collections
import numpy as np

from research.core import losses, optim, steps as steps_lib, tasks, train_state
from research.devices import placement, sharding
from research.models import gpt
from research.run import flops, parts

PRESETS = {
    'gpu': dict(num_layers=12, hidden_size=768, num_heads=12, seq_len=1024, batch=16),
    'tiny': dict(num_layers=2, hidden_size=64, num_heads=4, seq_len=32, batch=8),
}
DTYPES = {'bfloat16': 'bfloat16', 'float32': 'float32'}


def run(preset: dict, dtype: str, steps: int, rules_name: str, remat: str) -> dict:
  devices = placement.create('mesh', None, {'data': 1, 'fsdp': -1, 'tensor': 1}
                            if rules_name != 'data' else None,
                            sharding.rules_from_config(ml_collections.ConfigDict(
                                {'sharding': rules_name})))
  batch_size = preset['batch'] * devices.num_devices
  model = gpt.Model(num_layers=preset['num_layers'], hidden_size=preset['hidden_size'],
                    num_heads=preset['num_heads'], mlp_dim=4 * preset['hidden_size'],
                    max_len=preset['seq_len'], remat=remat,
                    dtype=parts.DTYPES[dtype])
  optimizer = optim.create(ml_collections.ConfigDict(dict(
      name='adamw', learning_rate=3e-4, weight_decay=0.01, grad_clip_norm=1.0)), steps + 2)
  tokens = np.zeros((1, preset['seq_len']), np.int32)
  variables = jax.jit(lambda k: model.init(k, tokens))(jax.random.PRNGKey(0))
  state = train_state.TrainState.create(apply_fn=model.apply, params=variables['params'],
                                       tx=optimizer, rng=jax.random.PRNGKey(1))
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  step_fn = functools.partial(steps_lib.train_step, task=tasks.Task('language_model'),
                              loss_fn=losses.get('cross_entropy', 0.0))
  rng = np.random.default_rng(0)
  host_batch = {'input': rng.integers(1, 256, (batch_size, preset['seq_len'] + 1),
                                      dtype=np.int32)}
  step_flops = flops.step_flops(step_fn, state, host_batch)
  state = devices.place_state(state)
  compiled = devices.compile(step_fn)
  batch = devices.shard_batch(host_batch)
  tic = time.perf_counter()
  state, sums = compiled(state, batch)  # Compile + the first step.
  jax.block_until_ready(sums)
  compile_seconds = time.perf_counter() - tic
  tic = time.perf_counter()
  for _ in range(steps):
    state, sums = compiled(state, batch)
    jax.block_until_ready(sums)
  seconds = time.perf_counter() - tic
  memory = [d.memory_stats() or {} for d in devices.devices]
  peak_bytes = max((m.get('peak_bytes_in_use', 0) for m in memory), default=0) or None
  steps_per_second = steps / seconds
  return dict(dtype=dtype, params=num_params, steps_per_second=steps_per_second,
              tokens_per_second=steps_per_second * batch_size * preset['seq_len'],
              tflops=step_flops * steps_per_second / 1e12 if step_flops else None,
              mfu=flops.mfu(step_flops, steps_per_second, flops.peak_flops(devices.devices, dtype)),
              peak_gib=peak_bytes / 2**30 if peak_bytes else None,
              loss=float(sums['loss'][0] / sums['loss'][1]), compile_seconds=compile_seconds,
              devices=f"{devices.num_devices} x {devices.devices[0].device_kind}")


def _fmt(value, spec):
  return 'n/a' if value is None else format(value, spec)


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--preset', choices=PRESETS, default='gpu')
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--sharding', choices=('data', 'fsdp'), default='data')
  parser.add_argument('--remat', default='none', help='none | full | dots_saveable')
  parser.add_argument('--dtypes', default='bfloat16,float32')
  args = parser.parse_args(argv)
  preset = PRESETS[args.preset]
  rows = [run(preset, dtype, args.steps, args.sharding, args.remat)
          for dtype in args.dtypes.split(',')]
  print(f"{rows[0]['devices']}; preset {args.preset} {preset}; {rows[0]['params']:,} parameters; "
        f"sharding {args.sharding}; remat {args.remat}; initial loss ln(256) = {math.log(256):.2f}")
  print()
  print('| dtype    | steps/s | tokens/s   | TFLOP/s |    MFU | peak GiB | loss  | compile s |')
  print('|:---------|--------:|-----------:|--------:|-------:|---------:|------:|----------:|')
  for r in rows:
    print(f"| {r['dtype']:<8} | {r['steps_per_second']:7.2f} | {r['tokens_per_second']:10,.0f} | "
          f"{_fmt(r['tflops'], '.3f'):>7} | {_fmt(r['mfu'] and 100 * r['mfu'], '.1f'):>5}% | "
          f"{_fmt(r['peak_gib'], '.2f'):>8} | {r['loss']:.3f} | {r['compile_seconds']:9.1f} |")
  return rows


if __name__ == '__main__':
  main()

"""Parameter + optimizer-state bytes per device: data parallelism vs FSDP vs tensor parallelism.

Command (from the repo root; ~1 min on 2 CPU cores; 8 fake CPU devices unless XLA_FLAGS says
otherwise):

  .venv/bin/python benchmarks/sharding_memory.py [--layers 6] [--width 512]

It builds configs/gpt_fsdp.py's GPT (AdamW: two moments per parameter) at the given size, places
the train state on the mesh of each row exactly as a run would (parts.build +
Placement.place_state), and sums the bytes of the shards each device holds
(research.devices.sharding.bytes_per_device). Columns: the largest per-device share of parameters
and of optimizer state, their total, and that total against the replicated (data-parallel) one. Nothing
is trained: memory for activations is not included (see remat and grad_accum_steps for those).
"""
import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')

import argparse  # noqa: E402  (after XLA_FLAGS, which must precede importing jax)
import pathlib  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402

from research import config as config_lib  # noqa: E402
from research.run import parts
from research.devices import sharding  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
ROWS = [  # name, (data, fsdp, tensor), rule set
    ('data parallel', (-1, 1, 1), 'data'),
    ('fsdp', (1, -1, 1), 'fsdp'),
    ('tensor (4)', (-1, 1, 4), 'tensor'),
    ('fsdp x tensor (2x4)', (1, -1, 4), 'fsdp_tensor'),
    ('data x fsdp x tensor', (2, 2, -1), 'fsdp_tensor'),
]


def per_device_bytes(layers: int, width: int, mesh: tuple, rules: str, data_dir: str) -> dict:
  config = config_lib.load(str(REPO / 'configs' / 'gpt_fsdp.py'))
  data, fsdp, tensor = mesh
  config_lib.apply_overrides(config, [
      f'model.num_layers={layers}', f'model.hidden_size={width}', f'model.mlp_dim={4 * width}',
      'model.num_heads=8', f'mesh.data={data}', f'mesh.fsdp={fsdp}', f'mesh.tensor={tensor}',
      f'sharding={rules!r}', f'dataset.data_dir={data_dir!r}'])
  exp = parts.build(config)
  state = exp.devices.place_state(exp.init_state())
  params = max(sharding.bytes_per_device(state.params).values())
  opt = max(sharding.bytes_per_device(state.opt_state).values())
  return {'params': params, 'opt_state': opt, 'sizes': exp.devices.sizes,
          'num_params': sum(x.size for x in jax.tree.leaves(state.params))}


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--layers', type=int, default=6)
  parser.add_argument('--width', type=int, default=512)
  args = parser.parse_args(argv)
  data_dir = os.environ.get('TFDS_DATA_DIR') or tempfile.mkdtemp(prefix='tfds-')
  rows = [{'name': name, **per_device_bytes(args.layers, args.width, mesh, rules, data_dir)}
          for name, mesh, rules in ROWS]
  mib = 2**20
  base = rows[0]['params'] + rows[0]['opt_state']
  print(f"GPT {args.layers} layers x width {args.width} ({rows[0]['num_params']:,} parameters, "
        f"float32, AdamW) on {jax.device_count()} {jax.devices()[0].platform} devices\n")
  print('| layout               | mesh (data, fsdp, tensor) | params MiB | optimizer MiB | '
        'total MiB | vs data |')
  print('|:---------------------|:--------------------------|-----------:|--------------:|'
        '----------:|--------:|')
  for r in rows:
    mesh = ', '.join(str(r['sizes'][a]) for a in sharding.AXES)
    total = r['params'] + r['opt_state']
    print(f"| {r['name']:<20} | {mesh:<25} | {r['params'] / mib:10.2f} | "
          f"{r['opt_state'] / mib:13.2f} | {total / mib:9.2f} | {total / base:6.3f}x |")
  return rows


if __name__ == '__main__':
  main()

"""The GPT addition model sharded over 8 devices: FSDP x tensor parallelism x data parallelism.

Command (8 fake CPU devices here; on a GPU host or TPU slice the mesh covers the real devices):
  XLA_FLAGS=--xla_force_host_platform_device_count=8 \
    research train --config configs/gpt_fsdp.py --workdir workdirs/gpt_fsdp

Same model, data and optimizer as configs/gpt_addition.py (2 pre-LN blocks, width 128, 4 heads,
addition strings), on a mesh data=2 x fsdp=2 x tensor=2: attention heads and MLP units are split
Megatron-style over `tensor`, every parameter and its Adam moments over `fsdp` (largest divisible
dimension), and the batch over data x fsdp. `:mesh=fsdp` puts all devices on fsdp instead,
`:mesh=data` is plain data parallelism, `:mesh=tensor` splits heads 4 ways. The loss curve equals
the 1-device run's within float32 rounding (tests/test_sharding.py checks it on a tiny variant).
Expected (measured, seed 0, 200 steps, 8 fake CPU devices): validation loss 1.66 (perplexity 5.3)
at step 200 — the same curve as gpt_addition's. Runtime ~3 min on 2 loaded CPU cores (fake devices
only check correctness: on CPU sharding costs time, it never saves any).
"""
import pathlib

import ml_collections

from research import config as config_lib
from research.errors import UserError

MESHES = {
    'fsdp_tensor': (dict(data=2, fsdp=2, tensor=2), 'fsdp_tensor'),
    'fsdp': (dict(data=1, fsdp=-1, tensor=1), 'fsdp'),
    'tensor': (dict(data=-1, fsdp=1, tensor=4), 'tensor'),
    'data': (dict(data=-1, fsdp=1, tensor=1), 'data'),
}


def get_config(arg=None):
  options = config_lib.parse_arg(arg, mesh='fsdp_tensor')
  if options.mesh not in MESHES:
    raise UserError(f"gpt_fsdp: mesh={options.mesh!r} is not one of {', '.join(MESHES)}")
  config = config_lib.load(str(pathlib.Path(__file__).with_name('gpt_addition.py')))
  config.eval_batch_size = 1000
  config.total_steps = 200
  config.eval_every = 100
  mesh, sharding = MESHES[options.mesh]
  config.mesh = ml_collections.ConfigDict(mesh)
  config.sharding = sharding
  return config

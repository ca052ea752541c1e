"""The GPT addition model sharded over 8 devices: FSDP x tensor parallelism x data parallelism.

Command (8 fake CPU devices here; on a GPU host or TPU slice the mesh covers the real devices):
  XLA_FLAGS=--xla_force_host_platform_device_count=8 \
    research train --config configs/gpt_fsdp.py --workdir workdirs/gpt_fsdp

Same model, data and optimizer as configs/gpt_addition.py (2 pre-LN blocks, width 128, 4 heads,
addition strings), on a mesh data=2 x fsdp=2 x tensor=2: attention heads and MLP units are split
Megatron-style over `tensor`, every parameter and its Adam moments over `fsdp` (largest divisible
dimension), and the batch over data x fsdp. `:mesh=fsdp` puts all devices on fsdp instead,
`:mesh=data` is plain data parallelism, `:mesh=tensor` splits heads 4 ways. 200 steps (the
schedule is gpt_addition's warm-up, so this is a short check, not a finished model).
Expected (measured, seed 0): validation loss 1.634 (perplexity 5.13), test 1.629 (test exact
match 0.003), on 8 fake CPU devices; the same config on 1 device
(`:mesh=data --config.num_devices=1`) logs the same train losses to 6 digits through step 150 and
validation 1.634 at step 200 (tests/test_sharding.py checks the equality on a tiny variant).
Runtime: 3.4 min wall on 8 fake devices on 2 CPU cores (3.6 steps/s; load average 10.4 before, 10.8
after: the machine was shared), 1.7 min on 1 device (5.3 steps/s; load 4.0 before, 6.7 after): on
CPU, sharding only costs time; it is here to check correctness before a TPU slice or GPU host,
where it saves memory.
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

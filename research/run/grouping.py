"""Which runs can train as one vectorized group (research/run/vectorized.py): configs that differ
only in seed and scalar hyper-parameters; and the group directory's record of its members, which
supervised groups and agents (run/agent.py) share. Plain Python, no JAX: the sweep planner asks
it in the parent process without importing a backend or taking an accelerator from its children.
"""
import json
from typing import TYPE_CHECKING

import ml_collections

from research.errors import UserError

if TYPE_CHECKING:  # research.rundir.workdir imports JAX, which this module must not.
  from research.rundir import workdir as workdir_lib

GROUP_FILE = 'group.json'

# Config keys that may differ between members; the optimizer's are passed to every vmapped step,
# label smoothing only when it differs (else every member uses the run's own loss function).
OPTIMIZER_SCALARS = ('learning_rate', 'weight_decay')
VARYING = ('seed', 'label_smoothing') + tuple(f'optimizer.{name}' for name in OPTIMIZER_SCALARS)

def _flatten(tree: dict, prefix: str = '') -> dict:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def vectorizable(configs: list[ml_collections.ConfigDict]) -> str | None:
  """None when `configs` can be trained as one vmapped program; otherwise why not, as a short
  phrase to show after "these runs ..." (e.g. "differ in model.hidden_sizes").

  They may differ only in `seed`, `optimizer.learning_rate`, `optimizer.weight_decay` and
  `label_smoothing` (agents, configs with an `env` group: only in `seed`); they must not ask
  for several devices (`num_devices` None or 1: a group always runs on one device, the first) or
  use gradient accumulation. Does not start JAX's
  backend, so that a parent process (the sweep runner) can ask without taking an accelerator from
  its children.
  """
  if not configs:
    return 'are none: nothing to train'
  flat = [_flatten(c.to_dict()) for c in configs]
  keys = set().union(*flat)
  # Agents (research/run/agent.py) vary only in seed: their optimizer is built once.
  varying = ('seed',) if 'env' in configs[0] else VARYING
  differ = sorted(k for k in keys - set(varying)
                  if any(f.get(k, '<unset>') != flat[0].get(k, '<unset>') for f in flat[1:]))
  if differ:
    return f"differ in {', '.join(differ)}"
  first = configs[0]
  if first.num_devices not in (None, 1):
    return (f"ask for num_devices={first.num_devices}; a vectorized group runs on one device "
            "(num_devices None or 1)")
  if first.grad_accum_steps > 1:
    return 'use gradient accumulation (grad_accum_steps > 1), which vectorized runs do not'
  return None


def on_one_device(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config` with num_devices=1 (its config.json then says where it ran)."""
  config = config.copy_and_resolve_references()
  config.num_devices = 1
  return config


def check_group_file(group_dir: 'workdir_lib.Workdir', run_dirs: list, resuming: bool) -> None:
  """Records the member workdirs; refuses to resume a group_dir that trained other members."""
  path, members = group_dir.path / GROUP_FILE, [str(d.path) for d in run_dirs]
  if resuming and path.exists():
    recorded = json.loads(path.read_text())['members']
    if recorded != members:
      raise UserError(f'group_dir {str(group_dir.path)!r} holds checkpoints of another group '
                      f'({len(recorded)} members: {recorded[0]}, ...); use a new group_dir')
  path.write_text(json.dumps({'members': members}, indent=2) + '\n')

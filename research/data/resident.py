"""Datasets resident on the device: each split placed once, batches gathered inside the program.

With `dataset.placement` 'device' (or 'auto' and the run's splits fit `dataset.device_budget_mb`),
a single run keeps its splits on its devices (replicated on each device of the mesh: the splits
this is for are small, and every device then gathers its share of a batch locally) and trains many
steps per dispatch: the step's batch is gathered from the resident split inside the compiled
program (`gather`), so no batch crosses from the host per step and no input thread competes with
the step for the CPU.

The order is the host pipeline's own (`pipeline.train_order`: a NumPy permutation seeded by
(seed, epoch), or one cycled order with `dataset.shuffle='once'`): the host computes the positions
of a whole dispatch's batches (a few KB) and the device gathers the examples. Batch `s` is
therefore the very batch the host pipeline would give at step `s`, so the device path trains the
same run as the host path (bit for bit at one step per dispatch; within float rounding when XLA
fuses several steps in one loop), resumes from any step, and its checkpoints resume on either
path (the data position is saved as the grain iterator's, {"next_index": step}).
"""
import json
import math

import jax
import numpy as np

from research.errors import UserError, unknown

PLACEMENTS = ('auto', 'device', 'host')


class Position:
  """The data position of a resident run, saved and restored by grain's Orbax handler in the
  format of the host pipeline's iterator, so that a checkpoint resumes on either path."""

  def __init__(self, step: int = 0):
    self.step = step

  def get_state(self) -> bytes:
    return json.dumps({'next_index': self.step}, indent=4).encode()

  def set_state(self, state: bytes) -> None:
    self.step = int(json.loads(state)['next_index'])

  def start_prefetch(self) -> None:
    """Nothing to prefetch (grain's handler calls this after a restore)."""


def split_bytes(info, splits=None) -> int:
  """Bytes of the decoded (float32 / int32) examples of `splits` (default: all) of a dataset."""
  per_example = math.prod(info.input_shape) * 4 + 8  # Input, plus label / lengths.
  if info.target_shape:
    per_example += math.prod(info.target_shape) * 4
  return sum(info.split_sizes[s] for s in (splits or info.split_sizes)) * per_example


def use_device(dataset_cfg, info, devices, process_count: int, loops_well: bool = True) -> bool:
  """Whether a run keeps its data on the device: `dataset.placement` 'device' or 'host', or
  'auto': the device when the splits fit `dataset.device_budget_mb`, the run is one process
  under a mesh and its model `loops_well` (models.loops_well: not a family whose convolutions
  XLA:CPU runs several times slower inside the resident path's loop of steps). 'device' where
  it cannot be is a UserError naming why."""
  mode = getattr(dataset_cfg, 'placement', None) or 'auto'
  if mode not in PLACEMENTS:
    raise unknown('dataset.placement', mode, PLACEMENTS)
  if mode == 'host':
    return False
  budget = getattr(dataset_cfg, 'device_budget_mb', None) or 1024
  need = split_bytes(info)
  why_not = None
  if process_count > 1:
    why_not = 'a multi-process run reads its data on each host'
  elif devices.mode != 'mesh':
    why_not = "config.parallel='pmap' feeds host batches"
  elif mode == 'auto' and need > budget * 2**20:
    why_not = f'its splits need {need / 2**20:.0f} MiB'
  elif mode == 'auto' and not loops_well:
    why_not = 'its convolutions run slowly inside a loop of steps on this platform'
  if why_not and mode == 'device':
    raise UserError(f"dataset.placement='device' is not possible here: {why_not}; use "
                    "placement 'auto' or 'host'")
  return why_not is None


def gather(examples: dict, positions: jax.Array) -> dict:
  """The batch of `positions` from a resident split (traced, inside the compiled program)."""
  return jax.tree.map(lambda x: x[positions], examples)


def eval_positions(size: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Positions [batches, batch_size] and mask of a whole split in order, the last batch padded
  (position 0, mask False): the batches `pipeline.eval_batches` gives, as indices."""
  batches = max(1, math.ceil(size / batch_size))
  flat = np.arange(batches * batch_size)
  mask = flat < size
  return (np.where(mask, flat, 0).astype(np.int32).reshape(batches, batch_size),
          mask.reshape(batches, batch_size))

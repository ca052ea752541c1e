"""Data parallelism over every device: `jax.jit` over a device mesh (default) or `jax.pmap`.

Both strategies run the same pure step function. Under `mesh`, arrays are global: the batch is
sharded along the mesh's `data` axis, the train state is replicated, and XLA inserts the gradient
all-reduce. Under `pmap`, the step runs once per device on a [devices, batch/devices, ...] slice,
and the step itself averages gradients with `lax.pmean` over `AXIS`.

Host-side code never sees the difference: it hands over host (numpy) batches and a train state,
and gets back metrics and a state it can checkpoint (`to_host`), which is the same pytree in both
modes, so a checkpoint written under one strategy or device count restores under another.
"""
import dataclasses
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from research.errors import UserError

AXIS = 'data'


@dataclasses.dataclass(frozen=True)
class DataParallel:
  """How one run spreads its steps over devices."""
  mode: str  # 'mesh' or 'pmap'
  devices: tuple

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  @property
  def axis_name(self) -> str | None:
    """The collective axis the step function must reduce over (pmap only)."""
    return AXIS if self.mode == 'pmap' else None

  @property
  def needs_step_sync(self) -> bool:
    """On CPU, back-to-back steps with cross-device collectives can deadlock XLA's rendezvous
    (measured here: abort after ~60 s); waiting for each step avoids it."""
    return self.num_devices > 1 and self.devices[0].platform == 'cpu'

  @property
  def mesh(self) -> Mesh:
    return Mesh(np.asarray(self.devices), (AXIS,))

  def check_batch(self, global_batch: int, what: str = 'config.batch_size') -> None:
    if global_batch % self.num_devices:
      divisors = [n for n in range(1, self.num_devices + 1) if self.num_devices % n == 0]
      nearest = self.num_devices * max(1, round(global_batch / self.num_devices))
      raise UserError(
          f"{what}={global_batch} does not divide across {self.num_devices} devices; use a "
          f"multiple of {self.num_devices} (e.g. {nearest}) or set config.num_devices to one of "
          f"{divisors}")

  def replicate(self, tree: Any) -> Any:
    """Places a host or single-device pytree on every device."""
    if self.mode == 'pmap':  # A leading device axis, one slice per device.
      stacked = jax.tree.map(
          lambda x: np.broadcast_to(np.asarray(x), (self.num_devices,) + np.shape(x)), tree)
      return jax.device_put(stacked, self._sharding(AXIS))
    return jax.device_put(tree, self._sharding())

  def to_host(self, tree: Any) -> Any:
    """The inverse of `replicate`: one copy, as numpy arrays."""
    if self.mode == 'pmap':
      tree = jax.tree.map(lambda x: x[0], tree)
    return jax.device_get(tree)

  def shard_batch(self, batch: dict) -> dict:
    """Places this process's share of a global batch on its devices."""
    if self.mode == 'pmap':
      n = self.num_devices
      return jax.device_put(
          jax.tree.map(lambda x: x.reshape((n, x.shape[0] // n) + x.shape[1:]), batch),
          self._sharding(AXIS))
    sharding = self._sharding(AXIS)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)

  def _sharding(self, *spec) -> NamedSharding:
    return NamedSharding(self.mesh, PartitionSpec(*spec))

  def compile(self, step: Callable, donate_state: bool = True) -> Callable:
    """Compiles `step(state, batch, *rest)`; the state argument is donated when asked."""
    donate = (0,) if donate_state else ()
    if self.mode == 'pmap':
      return jax.pmap(step, axis_name=AXIS, devices=self.devices, donate_argnums=donate)
    return jax.jit(step, donate_argnums=donate, out_shardings=self._sharding())

  def metrics_to_host(self, metrics: Any) -> Any:
    """Metrics are already reduced over devices inside the step; take one copy."""
    return self.to_host(metrics)


def create(mode: str, num_devices: int | None = None) -> DataParallel:
  """Uses the first `num_devices` devices of this host (all when None)."""
  available = jax.local_devices()
  if num_devices is None:
    num_devices = len(available)
  if not 1 <= num_devices <= len(available):
    raise UserError(f"config.num_devices={num_devices} but this host has {len(available)} "
                    f"{available[0].platform} device(s); allowed: 1..{len(available)} or None")
  if jax.process_count() > 1 and num_devices != len(available):
    raise UserError("config.num_devices must be None (all devices) in a multi-process run")
  if jax.process_count() > 1 and mode == 'pmap':
    raise UserError("config.parallel='pmap' runs in a single process; use 'mesh' across hosts")
  devices = tuple(jax.devices()) if jax.process_count() > 1 else tuple(available[:num_devices])
  return DataParallel(mode=mode, devices=devices)

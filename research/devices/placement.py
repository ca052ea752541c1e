"""Spreading a run over devices: `jax.jit` over a named device mesh (default) or `jax.pmap`.

Under `mesh`, arrays are global: the batch is split along the mesh's (data, fsdp) axes, and the
train state is placed by sharding rules (research/devices/sharding.py): replicated for plain data
parallelism, split on `fsdp` and/or `tensor` otherwise; XLA inserts every collective. Under
`pmap` (data parallelism only), the step runs once per device on a [devices, batch/devices, ...]
slice, and the step itself averages gradients with `lax.pmean` over `AXIS`.

Host-side code never sees the difference: it hands over host (numpy) batches and a train state,
and gets back metrics and a state it can checkpoint (`for_checkpoint`); a checkpoint written under
one strategy, sharding or device count restores under another (`restore_target`).
"""
import dataclasses
import logging
from typing import Any, Callable

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from research.devices import sharding
from research.errors import UserError

AXIS = 'data'
log = logging.getLogger('research')


@dataclasses.dataclass(frozen=True)
class Placement:
  """How one run spreads its steps over devices (the name predates tensor/fsdp sharding).

  `mesh_sizes` ({'data', 'fsdp', 'tensor'} → size) and `rules` apply under `mesh` only; the
  defaults (every device on `data`, parameters replicated) are plain data parallelism.
  """
  mode: str  # 'mesh' or 'pmap'
  devices: tuple
  mesh_sizes: tuple = ()  # ((axis, size), ...); () means all devices on `data`.
  rules: sharding.Rules = sharding.Rules(rules=(), auto_fsdp=False)

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
  def sizes(self) -> dict:
    return dict(self.mesh_sizes) or {'data': self.num_devices, 'fsdp': 1, 'tensor': 1}

  @property
  def mesh(self) -> Mesh:
    if self.mode == 'pmap':
      return Mesh(np.asarray(self.devices), (AXIS,))
    return sharding.build_mesh(self.devices, self.sizes)

  def check_batch(self, global_batch: int, what: str = 'config.batch_size') -> None:
    """The batch is split over every device under pmap, over data x fsdp under a mesh."""
    ways = self.num_devices if self.mode == 'pmap' else self.sizes['data'] * self.sizes['fsdp']
    if global_batch % ways:
      divisors = [n for n in range(1, self.num_devices + 1) if self.num_devices % n == 0]
      nearest = ways * max(1, round(global_batch / ways))
      raise UserError(
          f"{what}={global_batch} does not divide across {ways} devices; use a "
          f"multiple of {ways} (e.g. {nearest}) or set config.num_devices to one of "
          f"{divisors}")

  def replicate(self, tree: Any) -> Any:
    """Places a host or single-device pytree on every device."""
    if self.mode == 'pmap':  # A leading device axis, one slice per device.
      stacked = jax.tree.map(
          lambda x: np.broadcast_to(np.asarray(x), (self.num_devices,) + np.shape(x)), tree)
      return jax.device_put(stacked, self._sharding(AXIS))
    return jax.device_put(tree, self._sharding())

  def state_shardings(self, state: Any) -> Any:
    """The NamedShardings of a TrainState under the mesh (see sharding.state_shardings)."""
    return sharding.state_shardings(state, self.mesh, self.rules)

  def place_state(self, state: Any) -> Any:
    """Puts a train state on the devices: replicated under pmap, by the rules under a mesh."""
    if self.mode == 'pmap':
      return self.replicate(state)
    return jax.device_put(state, self.state_shardings(state))

  def restore_target(self, state: Any) -> Any:
    """What to restore a checkpoint of `state` into: under a mesh, abstract arrays carrying
    this run's shardings (each process then reads only its shards); under pmap, `state` (host
    arrays)."""
    if self.mode == 'pmap':
      return state
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        jax.eval_shape(lambda: state), self.state_shardings(state))

  def for_checkpoint(self, tree: Any) -> Any:
    """What Orbax is handed to save: the global arrays under a mesh (every process writes its
    own shards), one host copy under pmap."""
    return self.to_host(tree) if self.mode == 'pmap' else tree

  def to_host(self, tree: Any) -> Any:
    """The inverse of `replicate`: one copy, as numpy arrays (gathered across processes when a
    sharded array spans several)."""
    if self.mode == 'pmap':
      tree = jax.tree.map(lambda x: x[0], tree)
    if any(isinstance(x, jax.Array) and not x.is_fully_addressable
           for x in jax.tree.leaves(tree)):
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)

  def shard_batch(self, batch: dict, stacked: bool = False) -> dict:
    """Places this process's share of a global batch on its devices.

    With `stacked`, every array has a leading axis of steps (`steps_per_dispatch`) and the
    batch axis is the second one.
    """
    if self.mode == 'pmap':
      n = self.num_devices

      def split(x):
        if not stacked:
          return x.reshape((n, x.shape[0] // n) + x.shape[1:])
        x = x.reshape((x.shape[0], n, x.shape[1] // n) + x.shape[2:])
        return np.swapaxes(x, 0, 1)  # [devices, steps, batch / devices, ...]
      return jax.device_put(jax.tree.map(split, batch), self._sharding(AXIS))
    spec = sharding.batch_spec(stacked)
    named = NamedSharding(self.mesh, spec)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(named, x), batch)

  def constrain_batch(self, batch: dict) -> dict:
    """Inside a compiled program: lays out a batch as `shard_batch` places one (split over the
    mesh's data axes), e.g. one gathered from a split resident on every device."""
    if self.mode != 'mesh' or self.num_devices == 1:
      return batch
    return jax.lax.with_sharding_constraint(batch, NamedSharding(self.mesh,
                                                                 sharding.batch_spec()))

  def _sharding(self, *spec) -> NamedSharding:
    return NamedSharding(self.mesh, PartitionSpec(*spec))

  def compile(self, step: Callable, donate_state: bool = True,
              returns_state: bool | None = None) -> Callable:
    """Compiles `step(state, batch, *rest)`; the state argument is donated when asked.

    `returns_state` (default: `donate_state`) says the step returns (state, metrics): under a
    mesh the new state then keeps the shardings the state came in with, and metrics are
    replicated.
    """
    donate = (0,) if donate_state else ()
    if self.mode == 'pmap':
      return jax.pmap(step, axis_name=AXIS, devices=self.devices, donate_argnums=donate)
    returns_state = donate_state if returns_state is None else returns_state
    return _MeshStep(step, donate, returns_state, self._sharding())

  def metrics_to_host(self, metrics: Any) -> Any:
    """Metrics are already reduced over devices inside the step; take one copy."""
    return self.to_host(metrics)


class _MeshStep:
  """A step jitted under the mesh, with output shardings taken from the first state it sees."""

  def __init__(self, step: Callable, donate: tuple, returns_state: bool,
               replicated: NamedSharding):
    self._step, self._donate = step, donate
    self._returns_state, self._replicated = returns_state, replicated
    self._jitted = None

  def jitted(self, state: Any) -> Callable:
    if self._jitted is None:
      out = self._replicated
      if self._returns_state:
        out = (jax.tree.map(lambda x: x.sharding, state), self._replicated)
      self._jitted = jax.jit(self._step, donate_argnums=self._donate, out_shardings=out)
    return self._jitted

  def __call__(self, state: Any, *args: Any) -> Any:
    return self.jitted(state)(state, *args)

  def lower(self, state: Any, *args: Any):
    """jax's Lowered for these arguments (for cost analysis); compiles nothing."""
    return self.jitted(state).lower(state, *args)


def create(mode: str, num_devices: int | None = None, mesh: dict | None = None,
           rules: sharding.Rules | None = None) -> Placement:
  """Uses the first `num_devices` devices of this host (all when None; every process's in a
  multi-process run), shaped by `mesh` ({'data', 'fsdp', 'tensor'} sizes, -1 = the rest)."""
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
  rules = rules or sharding.Rules(rules=(), auto_fsdp=False)
  sizes = sharding.mesh_shape(mesh, len(devices))
  if mode == 'pmap':
    if sizes['data'] != len(devices) or rules.rules or rules.auto_fsdp:
      raise UserError("config.parallel='pmap' is data parallelism only: use parallel='mesh' "
                      "for config.mesh fsdp/tensor axes or config.sharding other than 'data'")
    return Placement(mode=mode, devices=devices)
  return Placement(mode=mode, devices=devices, mesh_sizes=tuple(sizes.items()), rules=rules)


def fit_to_host(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config of a finished run, made to read back on this host (eval, load_run).

  A run trained on 8 devices with a 2x2x2 mesh records that layout; evaluated on a laptop it
  cannot be built. Then the copy uses every local device with plain data parallelism, which
  restores the same parameters (checkpoints do not depend on the layout)."""
  try:
    create(config.parallel, config.num_devices, config.mesh,
           sharding.rules_from_config(config))
    return config
  except UserError as e:
    fitted = ml_collections.ConfigDict(config.to_dict())
    fitted.num_devices = None
    fitted.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
    fitted.sharding, fitted.sharding_rules = 'data', ()
    log.info('the run\'s device layout does not fit this host (%s); reading it back with data '
             'parallelism over %d device(s)', e, jax.local_device_count())
    return fitted

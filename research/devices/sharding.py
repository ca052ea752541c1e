"""Sharding by config: a named device mesh and rules that give each parameter a partition spec.

The mesh has three named axes, always in this order:
  data    pure data parallelism: each group of devices along it sees its own slice of the batch;
  fsdp    fully sharded data parallelism: the batch is split along it too, and so are parameters
          and optimizer state (each device holds 1/fsdp of them; XLA all-gathers a weight right
          before it is used and reduce-scatters its gradient);
  tensor  tensor (Megatron) parallelism: the Transformer's attention heads and MLP hidden units
          are split along it, so each device computes a slice of every block.
`config.mesh` gives the axis sizes; one of them may be -1 (the rest of the devices).

Which parameter is split how comes from rules: (regex, spec) pairs matched with `re.search`
against the parameter's '/'-joined path (e.g. 'decoder/block_0/attention/query/kernel'); the
first match wins. A spec names a mesh axis (or None, or a tuple of axes) per array dimension.
`config.sharding_rules` come first, then the built-in set named by `config.sharding`:

  data         every parameter replicated (what plain data parallelism does);
  fsdp         each parameter's largest dimension divisible by the fsdp size is split on `fsdp`;
  tensor       Megatron-style: q/k/v projections split by head, the attention output by head
               (rows), the MLP's first layer by column, its second by row; the rest replicated;
  fsdp_tensor  the tensor rules, then fsdp on the largest remaining dimension.

A user rule's spec is used exactly as written (no automatic fsdp on top). Parameters that match no
rule are replicated, except that the `fsdp*` sets shard them on `fsdp` where a dimension allows.
Optimizer state follows its parameter (optax.tree_map_params); scalars are replicated.
"""
import dataclasses
import math
import re
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from research.config import schema
from research.errors import UserError, unknown

AXES = ('data', 'fsdp', 'tensor')
BATCH_AXES = ('data', 'fsdp')  # The batch dimension is split over both.

# Megatron-style splits of Flax's MultiHeadDotProductAttention and the blocks' MLP (transformer.py).
# Kernels: query/key/value [d, heads, head_dim], out [heads, head_dim, d], mlp_in [d, m],
# mlp_out [m, d]. Column-parallel layers split their output (and bias); row-parallel ones split
# their input, and their bias (added after the all-reduce) stays whole.
TENSOR_RULES = (
    (r'attention/(query|key|value)/kernel$', (None, 'tensor', None)),
    (r'attention/(query|key|value)/bias$', ('tensor', None)),
    (r'attention/out/kernel$', ('tensor', None, None)),
    (r'mlp_in/kernel$', (None, 'tensor')),
    (r'mlp_in/bias$', ('tensor',)),
    (r'mlp_out/kernel$', ('tensor', None)),
)
# name → (built-in rules, shard the remaining dimensions on fsdp).
RULE_SETS = {
    'data': ((), False),
    'fsdp': ((), True),
    'tensor': (TENSOR_RULES, False),
    'fsdp_tensor': (TENSOR_RULES, True),
}


def mesh_shape(mesh_cfg: ml_collections.ConfigDict | dict | None, num_devices: int) -> dict:
  """{'data': n, 'fsdp': f, 'tensor': t} with the -1 resolved; UserError if it cannot fit."""
  sizes = {axis: 1 for axis in AXES}
  sizes['data'] = -1
  given = dict(mesh_cfg or {})
  for axis in given:
    if axis not in AXES:
      raise unknown('config.mesh axis', axis, AXES)
  sizes.update(given)
  shown = ', '.join(f'{a}={sizes[a]}' for a in AXES)
  for axis, size in sizes.items():
    if not isinstance(size, int) or (size < 1 and size != -1):
      raise UserError(f"config.mesh.{axis}={size!r}: axis sizes are positive ints or -1 "
                      "(the rest of the devices)")
  free = [a for a in AXES if sizes[a] == -1]
  if len(free) > 1:
    raise UserError(f"config.mesh ({shown}) may have at most one axis of size -1")
  fixed = math.prod(s for s in sizes.values() if s != -1)
  if free:
    if num_devices % fixed:
      raise UserError(f"config.mesh ({shown}): {num_devices} devices do not divide by "
                      f"{fixed}; choose sizes whose product divides {num_devices}")
    sizes[free[0]] = num_devices // fixed
  if math.prod(sizes.values()) != num_devices:
    raise UserError(f"config.mesh ({shown}) has {math.prod(sizes.values())} devices but the run "
                    f"has {num_devices}; the product of the sizes must equal the device count")
  return sizes


def build_mesh(devices: Sequence[Any], sizes: dict) -> Mesh:
  """A Mesh over `devices` with AXES shaped by `sizes`; a physical-topology-aware device order
  on TPU/GPU (mesh_utils), the given order otherwise."""
  shape = tuple(sizes[a] for a in AXES)
  try:
    from jax.experimental import mesh_utils  # pylint: disable=g-import-not-at-top
    grid = mesh_utils.create_device_mesh(shape, devices=list(devices))
  except (ValueError, NotImplementedError, AssertionError):
    grid = np.asarray(devices).reshape(shape)
  return Mesh(grid, AXES)


def _check_spec(spec: Any, where: str) -> tuple:
  if not isinstance(spec, (tuple, list)):
    raise UserError(f"{where}: a partition spec is a tuple of mesh axis names or None per "
                    f"dimension (axes: {', '.join(AXES)}), got {spec!r}")
  for entry in spec:
    names = entry if isinstance(entry, (tuple, list)) else (entry,)
    for name in names:
      if name is not None and name not in AXES:
        raise unknown(f'{where}: mesh axis', name, AXES)
  return tuple(tuple(e) if isinstance(e, list) else e for e in spec)


@dataclasses.dataclass(frozen=True)
class Rules:
  """Ordered (regex, spec) rules plus the built-in set's automatic fsdp splitting."""
  rules: tuple
  auto_fsdp: bool
  name: str = 'data'

  def spec_for(self, path: str, shape: tuple, sizes: dict) -> PartitionSpec:
    """The partition spec of one parameter; UserError when a named split does not divide."""
    for number, (pattern, spec) in enumerate(self.rules):
      if re.search(pattern, path):
        if len(spec) > len(shape):
          raise UserError(f"sharding rule {pattern!r} -> {spec} has {len(spec)} dimensions but "
                          f"parameter {path} has shape {shape}")
        _check_divisible(path, shape, spec, sizes)
        if number < self._num_user_rules or not self.auto_fsdp:
          return _trimmed(spec)
        return _trimmed(_add_fsdp(shape, spec, sizes))
    return _trimmed(_add_fsdp(shape, (), sizes)) if self.auto_fsdp else PartitionSpec()

  @property
  def _num_user_rules(self) -> int:
    return len(self.rules) - len(RULE_SETS[self.name][0])


def _trimmed(spec: tuple) -> PartitionSpec:
  """The spec without trailing Nones (the same sharding, in its shortest spelling)."""
  spec = list(spec)
  while spec and spec[-1] is None:
    spec.pop()
  return PartitionSpec(*spec)


def _check_divisible(path: str, shape: tuple, spec: tuple, sizes: dict) -> None:
  for dim, entry in enumerate(spec):
    names = entry if isinstance(entry, tuple) else (entry,)
    parts = math.prod(sizes[n] for n in names if n is not None)
    if shape[dim] % parts:
      raise UserError(f"parameter {path} of shape {shape} cannot be split {parts} ways along "
                      f"dimension {dim} (spec {spec}); change config.mesh or the sharding rule")


def _add_fsdp(shape: tuple, spec: tuple, sizes: dict) -> tuple:
  """Puts `fsdp` on the largest dimension not yet split that the fsdp size divides."""
  spec = tuple(spec) + (None,) * (len(shape) - len(spec))
  fsdp = sizes['fsdp']
  if fsdp == 1:
    return spec
  free = [d for d in range(len(shape)) if spec[d] is None and shape[d] % fsdp == 0]
  if not free:
    return spec
  dim = max(free, key=lambda d: (shape[d], -d))
  return spec[:dim] + ('fsdp',) + spec[dim + 1:]


def rules_from_config(config: ml_collections.ConfigDict) -> Rules:
  """The rules of `config.sharding` (a built-in name) behind `config.sharding_rules`; a group
  that sets only some of the two reads the schema's defaults for the others."""
  config = schema.complete({k: schema.TOP[k] for k in ('sharding', 'sharding_rules')},
                           {k: config[k] for k in ('sharding', 'sharding_rules') if k in config})
  name = config['sharding']
  if name not in RULE_SETS:
    raise unknown('config.sharding', name, RULE_SETS)
  user = []
  for number, rule in enumerate(config['sharding_rules'] or ()):
    where = f'config.sharding_rules[{number}]'
    if not isinstance(rule, (tuple, list)) or len(rule) != 2 or not isinstance(rule[0], str):
      raise UserError(f"{where} must be a (regex, partition spec) pair, got {rule!r}")
    try:
      re.compile(rule[0])
    except re.error as e:
      raise UserError(f"{where}: {rule[0]!r} is not a valid regex ({e})") from None
    user.append((rule[0], _check_spec(rule[1], where)))
  built_in, auto_fsdp = RULE_SETS[name]
  return Rules(rules=tuple(user) + built_in, auto_fsdp=auto_fsdp, name=name)


def path_name(path: tuple) -> str:
  """'decoder/block_0/attention/query/kernel' for a jax key path."""
  parts = []
  for key in path:
    for attr in ('key', 'name', 'idx'):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
  return '/'.join(parts)


def param_specs(params: Any, rules: Rules, sizes: dict) -> Any:
  """A tree of PartitionSpecs shaped like `params`."""
  return jax.tree_util.tree_map_with_path(
      lambda path, x: rules.spec_for(path_name(path), tuple(np.shape(x)), sizes), params)


def state_shardings(state: Any, mesh: Mesh, rules: Rules) -> Any:
  """NamedShardings for a TrainState: params by the rules, optimizer state like its parameter,
  everything else (step, RNG key, BatchNorm statistics, optimizer counters) replicated."""
  sizes = dict(zip(mesh.axis_names, mesh.devices.shape))
  named = lambda spec: NamedSharding(mesh, spec)
  replicated = named(PartitionSpec())
  specs = param_specs(state.params, rules, sizes)
  params = jax.tree.map(named, specs, is_leaf=lambda x: isinstance(x, PartitionSpec))

  def like_param(value, param, sharding):
    # A per-parameter state of another shape (e.g. a factored second moment) stays whole.
    return sharding if np.shape(value) == np.shape(param) else replicated

  try:
    opt_state = optax.tree_map_params(
        state.tx, like_param, state.opt_state, state.params, params,
        transform_non_params=lambda _: replicated)
  except ValueError:  # Per-group state (optimizer.freeze/group_lr's multi_transform): whole.
    opt_state = jax.tree.map(lambda _: replicated, state.opt_state)
  ema = getattr(state, 'ema_params', None)  # A moving average is split like the parameters.
  return state.replace(
      step=replicated, params=params, opt_state=opt_state, rng=replicated,
      batch_stats=jax.tree.map(lambda _: replicated, state.batch_stats),
      **({} if ema is None else {'ema_params': params}))


def batch_spec(stacked: bool = False) -> PartitionSpec:
  """The batch's partition: dimension 0 over (data, fsdp); with `stacked`, dimension 1 (the
  leading dimension then counts the steps of one dispatch)."""
  return PartitionSpec(None, BATCH_AXES) if stacked else PartitionSpec(BATCH_AXES)


def bytes_per_device(tree: Any) -> dict:
  """{device: bytes} of the shards of `tree`'s arrays each addressable device holds."""
  held = {}
  for leaf in jax.tree.leaves(tree):
    for shard in leaf.addressable_shards:
      held[shard.device] = held.get(shard.device, 0) + shard.data.nbytes
  return held

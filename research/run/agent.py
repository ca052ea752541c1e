"""A DQN agent as a program of THE loop (research/run/loop.py): one run, or K seeds vmapped.

The loop drives an agent as it drives supervised training: a loop step is one compiled chunk of
acting and learning (core/dqn.py: `dqn.rollout_length` vectorized steps of `env.num_envs`
environments and their updates, one dispatch), its metric sums become the `train` rows (mean
return and length of the episodes that ended in the window, loss, ε, environment steps), an
evaluation is `env.eval_episodes` greedy episodes on fresh evaluation seeds (mean and std of the
return), and a checkpoint is the whole agent (online and target parameters, optimizer state,
replay buffer contents and position, environment states and observations, episodes under way,
RNG key, counters), so a run killed at any moment resumes bit-identically. The final evaluation
is the `test` row and summary.json's `final.test`: greedy episodes on seeds no evaluation
during training used. Validation rows are the evaluations during training.

Members: the state has a leading member axis (K = 1 for `research train`), and the chunk and the
evaluation are `jax.vmap`ped over it, so a sweep trains K seeds in one program
(`train_group`; each member's workdir gets the normal files and a final checkpoint of its own).
A group spreads its members over `dqn.group_devices` devices (`member_shares`): each device runs
its share as the one-device group's program, all at once, so the group uses that many cores (or
accelerators). Not one SPMD program over the devices: XLA:CPU compiles a partitioned module's Adam
update differently (parameters one ulp apart after the first update, other returns later);
separate programs keep every member's results bit-identical whatever the device count, and a
checkpoint resumes on any count.
"""
import contextlib
import functools
import logging

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from research.core import dqn
from research.errors import UserError
from research.run import agent_parts, grouping, loop, preemption, vectorized
from research.rundir import checkpoint, workdir as workdir_lib

log = logging.getLogger('research')

# Evaluation seeds: a stream of keys apart from training's, one per split (the final `test`
# evaluation's episodes are never those of a `validation` one), folded with the step count.
_EVAL_STREAM = 0x5EED
_SPLITS = {'validation': 1, 'test': 2}


def member_shares(members: int, devices: list) -> list[tuple[jax.Device, slice]]:
  """The member axis as contiguous ranges over at most `len(devices)` devices, the first ranges
  the larger, at least two members each: XLA compiles a vmap over one member with other last bits
  than a vmap over several, so a share of one would change that member's results."""
  count = max(1, min(len(devices), members // 2))
  sizes = [members // count + (i < members % count) for i in range(count)]
  starts = np.cumsum([0] + sizes)
  return [(devices[i], slice(int(starts[i]), int(starts[i + 1]))) for i in range(count)]


def _stacked(trees: list):
  """Per-share host pytrees as one, along the member axis."""
  return jax.tree.map(lambda *xs: np.concatenate(xs), *trees)


class Agent:
  """The loop's program for K agents of one config that differ only in seed. Its placed state is
  a tuple of per-share states, each on its own device (one share unless the group spreads)."""

  final_splits = ('validation', 'test')  # An agent has no training split to evaluate.
  steps_per_dispatch = 1  # A step is already one compiled chunk.

  def __init__(self, members: list[agent_parts.AgentParts], run_dirs=None):
    self.parts = members[0]
    self.config, self.task, self.devices = self.parts.config, self.parts.task, self.parts.devices
    self.members = len(members)
    self.seeds = [m.config.seed for m in members]
    self.run_dirs = run_dirs
    p, s = self.parts, self.parts.settings
    chunk = jax.vmap(functools.partial(dqn.chunk, s, p.env, p.model.apply, p.optimizer))
    self._chunk = jax.jit(chunk, donate_argnums=0)
    self._chunk_kept = jax.jit(chunk)  # When some members stopped early: their old state stays.
    self._evaluate = jax.jit(jax.vmap(functools.partial(
        dqn.evaluate, p.env, p.model.apply, episodes=self.config.env.eval_episodes)))
    home = self.devices.devices[0]
    wanted = self.config.dqn.group_devices
    local = jax.local_devices(backend=home.platform)
    self.shares = member_shares(self.members,
                                [home] + [d for d in local if d != home][:wanted - 1])
    if self.members > 1 and len(self.shares) < wanted:
      log.info('dqn.group_devices=%d: %d members spread over %d device(s) (%d local, at least '
               '2 members each)', wanted, self.members, len(self.shares), len(local))

  def _init_one(self, key: jax.Array) -> dqn.AgentState:
    init_key, agent_key = jax.random.split(key)
    p = self.parts
    return dqn.init(p.settings, p.env, p.init_params(init_key), p.optimizer, agent_key)

  def init_state(self) -> dqn.AgentState:
    keys = jnp.stack([jax.random.PRNGKey(seed) for seed in self.seeds])
    return jax.jit(jax.vmap(self._init_one))(keys)

  def restore(self, ckpt: checkpoint.Checkpointer, state: dqn.AgentState,
              step: int | None = None):
    """(step, state) from the newest good checkpoint, or from `step` when given."""
    target = jax.device_get(flax.serialization.to_state_dict(state))
    if step is None:
      step, saved = ckpt.restore_newest_good(target)
    else:
      saved = ckpt.restore(step, target)
    restored = jax.tree.map(lambda t, x: jnp.asarray(x, t.dtype), target, saved)
    return step, flax.serialization.from_state_dict(state, restored)

  def place(self, state: dqn.AgentState) -> tuple[dqn.AgentState, ...]:
    if len(self.shares) == 1:
      return (jax.device_put(state, self.shares[0][0]),)
    host = jax.device_get(state)
    return tuple(jax.device_put(jax.tree.map(lambda x, s=share: x[s], host), device)
                 for device, share in self.shares)

  def train(self, state: tuple, active: np.ndarray):
    # Dispatches are asynchronous: every device is busy before any result is awaited. (The
    # first call compiles one program per device, one after the other: XLA:CPU's compiler uses
    # every core already, so compiling them in parallel threads measured no faster.)
    outs = [self._train_share(s, active[share]) for s, (_, share) in zip(state, self.shares)]
    return tuple(new for new, _ in outs), tuple(sums for _, sums in outs)

  def _train_share(self, state: dqn.AgentState, active: np.ndarray):
    if active.all():
      return self._chunk(state)
    new, sums = self._chunk_kept(state)
    keep = jnp.asarray(active)
    new = jax.tree.map(lambda a, b: jnp.where(keep.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
                       new, state)
    return new, sums

  def flops_per_step(self, state) -> None:
    return None  # Acting, replay and updates: XLA's count would mostly be the environments'.

  def window_to_host(self, window: list) -> list:
    return [_stacked(list(sums)) for sums in jax.device_get(window)]

  def member_sums(self, host_sums: dict, k: int) -> dict:
    return vectorized.member(host_sums, k)

  def evaluate(self, state: tuple, split: str) -> list[dict]:
    """Each member's greedy policy over `env.eval_episodes` fresh episodes: mean and std of the
    return, mean length. The episodes depend on the seed, the split and the step count."""
    env_steps = np.concatenate(jax.device_get([s.env_steps for s in state]))
    keys = np.asarray(jnp.stack([jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(
        jax.random.PRNGKey(seed), _EVAL_STREAM), _SPLITS[split]), int(n))
        for seed, n in zip(self.seeds, env_steps)]))
    outs = [self._evaluate(s.params, jax.device_put(keys[share], device))
            for s, (device, share) in zip(state, self.shares)]
    returns, lengths = _stacked(jax.device_get(outs))
    return [{'return': float(np.mean(r, dtype=np.float64)),
             'return_std': float(np.std(r, dtype=np.float64)),
             'length': float(np.mean(n, dtype=np.float64)), 'episodes': int(r.size),
             'env_steps': int(steps)} for r, n, steps in zip(returns, lengths, env_steps)]

  def exact_match(self, state, split: str) -> list[None]:
    return [None] * self.members

  def _saved(self, state: tuple) -> dict:
    """The placed state's shares as one host state dict (the checkpoint's layout)."""
    return flax.serialization.to_state_dict(_stacked(jax.device_get(list(state))))

  def save(self, ckpt: checkpoint.Checkpointer, step: int, state: tuple) -> None:
    ckpt.save(step, self._saved(state))

  def finish(self, state: tuple, steps_per_member: list[int]) -> None:
    """A group's members each get their final agent (a member axis of 1, as a single run's) in
    their own workdir; a single run's last checkpoint is its own already."""
    if self.run_dirs is None:
      return
    saved = self._saved(state)
    for k, (run_dir, step) in enumerate(zip(self.run_dirs, steps_per_member)):
      with checkpoint.Checkpointer(run_dir, keep=self.config.keep_checkpoints) as own:
        if own.latest_step() != step:
          own.save(step, jax.tree.map(lambda x, k=k: x[k:k + 1], saved))

  def summary_extras(self, summary: dict) -> dict:
    """Environment steps and their rate (throughput of each member; a group's total is K times
    it); `examples_per_second` counts the transitions sampled for updates."""
    rate, s = summary['steps_per_second'], self.parts.settings
    per_step = s.env_steps_per_chunk
    extras = {'env_steps': summary['steps'] * per_step,
              'env_steps_per_second': rate * per_step if rate else None,
              'examples_per_second': rate * per_step / s.train_every * s.batch_size
              if rate else None}
    if self.run_dirs is not None:
      extras['vectorized'] = self.members
      extras['group_devices'] = len(self.shares)
    return extras


def train(config: ml_collections.ConfigDict, workdir: str, source,
          stop_request: preemption.StopRequest) -> dict:
  """One agent in `workdir` (research/run/train.py hands over a config with an `env` group)."""
  parts = agent_parts.build(config)  # First: a bad config must not leave an empty workdir.
  stop_request.check('before training started; nothing was written')
  run_dir = workdir_lib.Workdir(workdir)
  with run_dir.lock():
    run_dir.check_same_experiment(parts.config)
    with checkpoint.Checkpointer(run_dir.path, keep=parts.config.keep_checkpoints) as ckpt:
      member = loop.Member(run_dir, parts.config, source)
      return loop.run(Agent([parts]), ckpt, [member], run_dir.path, stop_request)[0]


def train_group(configs: list[ml_collections.ConfigDict], workdirs: list[str],
                group_dir: str) -> list[dict]:
  """K agents that differ only in seed, vmapped in one program (`research sweep`'s vectorized
  groups); `workdirs[k]` gets member k's files, `group_dir` the group's checkpoints."""
  seeds = [c.seed for c in configs]
  flat = [c.to_dict() for c in configs]
  for f in flat:
    f.pop('seed')
  if any(f != flat[0] for f in flat[1:]):
    raise UserError(f'these {len(configs)} agents cannot be trained as one vectorized group: '
                    'they differ in more than the seed')
  with preemption.stop_on_signals() as stop_request:
    members = [agent_parts.build(grouping.on_one_device(c)) for c in configs]
    stop_request.check('before training started; nothing was written')
    group = workdir_lib.Workdir(group_dir)
    run_dirs = [workdir_lib.Workdir(w) for w in workdirs]
    with contextlib.ExitStack() as locks:
      for directory in (group, *run_dirs):
        locks.enter_context(directory.lock())
      for run_dir, m in zip(run_dirs, members):
        run_dir.check_same_experiment(m.config)
      agent = Agent(members, [d.path for d in run_dirs])
      loop_members = [loop.Member(d, m.config, None, f'{d.path} (vectorized member {k}): ')
                      for k, (d, m) in enumerate(zip(run_dirs, members))]
      log.info('training %d agents (seeds %s) as one vmapped program%s', len(seeds), seeds,
               f' on each of {len(agent.shares)} devices' if len(agent.shares) > 1 else '')
      with checkpoint.Checkpointer(group.path, keep=agent.config.keep_checkpoints) as ckpt:
        resuming = ckpt.latest_step() is not None
        grouping.check_group_file(group, run_dirs, resuming)
        return loop.run(agent, ckpt, loop_members, group.path, stop_request)


def evaluate_workdir(workdir: str, config: ml_collections.ConfigDict, split: str = 'test',
                     step: int | None = None) -> dict:
  """`research eval` of an agent's workdir: its greedy policy at `step` (default: the newest good
  checkpoint) on `split`'s evaluation seeds, the same episodes its run evaluated there."""
  if split not in _SPLITS:
    raise UserError(f"an agent is evaluated on split 'test' or 'validation' (greedy episodes on "
                    f"evaluation seeds), not {split!r}")
  program = Agent([agent_parts.build(config)])
  state = program.init_state()
  with checkpoint.Checkpointer(workdir, read_only=True) as ckpt:
    if step is not None and step not in ckpt.all_steps():
      raise UserError(f"step {step} is not kept in {workdir!r}; kept steps: "
                      f"{', '.join(map(str, ckpt.all_steps()))}")
    step, state = program.restore(ckpt, state, step)
  return {'step': step, 'split': split, **program.evaluate(program.place(state), split)[0]}

"""Vectorized runs: K configs that differ only in seed and scalar hyper-parameters, trained as ONE
compiled program with `jax.vmap`.

    reason = grouping.vectorizable(configs)   # None, or why not ("differ in model.hidden_sizes")
    summaries = train_vectorized(configs, workdirs, group_dir)
Every member keeps what a separate `research train` run would have: its own initialization and
dropout keys (from its seed), its own data order (a grain iterator seeded like a separate run's,
batches stacked on a member axis; on resident data, placement 'auto' or 'device' as for a
single run, one copy of the split on the device that each member gathers its seed's batches
from: data/resident.py), its own learning rate and weight decay (the optimizer is rebuilt inside
the vmapped step from the member's values, so schedules, clipping and L2 are the same code as a
separate run's) and its label smoothing. The pure
`steps.train_step` and `steps.eval_step` are vmapped over the stacked train state; evaluation
runs all members on the same eval batches. Results equal K separate runs up to float rounding:
XLA compiles the batched program differently (fused, reordered reductions), so they agree to
~1e-6, not bit for bit. Like any change of summation order (1 vs 8 devices, say), that rounding
can grow over a long run at a high learning rate: MNIST-1D's MLP at Adam 1e-2 agrees to 7 digits
for ~200 steps, then drifts into a different but equally valid run of the same seed
(benchmarks/README.md).

Speed: one group pays the fixed costs of a run (compiling, evaluating, checkpointing) once, and
vmap turns K small matmuls into one batched one; on CPU a vmapped convolution (a grouped
convolution over the members) is slower than K plain ones (benchmarks/vectorized_seeds.py).
`config.vectorize_mode='unroll'` compiles K copies of a run's own step into one program
instead: each member is then bit-identical to its separate run (except that a label smoothing
that differs between members is traced), convolutions keep their fast kernels, and only the
dispatches and fixed costs are shared; compiling takes about K times longer.

Each member's workdir gets the normal contract (config.json, metrics.jsonl with the same rows,
summary.json with the same keys plus `vectorized`, and a final Orbax checkpoint in the single-run
format, so `research eval` and `load_run` work on it). The group's own checkpoints (the stacked
state and one iterator position per distinct seed) live in `group_dir/checkpoints`; rerunning the
same call resumes from them. The loop (research/run/loop.py) drives the group as it drives a single
run: early stopping per member (a stopped member's state is frozen while the others go on),
`steps_per_dispatch` (lax.scan over k stacked member batches) and profiling. One device, one
process.
"""
import contextlib
import functools
import logging
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from research import data, models
from research.core import losses, metric_sums, optim, steps, train_state
from research.data import pipeline, resident
from research.errors import UserError
from research.run import dispatch, grouping, loop, parts, preemption, single_run
from research.rundir import checkpoint, workdir as workdir_lib

log = logging.getLogger('research')



def member(tree, k: int):
  """Member `k`'s slice of a stacked pytree."""
  return jax.tree.map(lambda x: x[k], tree)


class _Group:
  """The loop's program for K runs at once: the compiled steps (vmapped or unrolled), one data
  stream per distinct seed, and the members' hyper-parameters."""

  final_splits = ('train', 'validation', 'test')

  def __init__(self, members: list[parts.Parts], group_dir: pathlib.Path,
               run_dirs: list[pathlib.Path]):
    self.experiments = members
    self.members = len(members)
    decays = [m.config.optimizer.weight_decay for m in members]
    # The member with the largest weight decay gives the optimizer's structure (an L2 term when
    # any member decays; decay 0 then adds 0 * params, which changes nothing).
    self.exp = members[int(np.argmax(decays))]
    self.config, self.task, self.devices = self.exp.config, self.exp.task, self.exp.devices
    self.group_dir, self.run_dirs = group_dir, run_dirs
    self.hyper = {name: np.asarray([m.config.optimizer[name] for m in members], np.float32)
                  for name in grouping.OPTIMIZER_SCALARS}
    smoothing = [m.config.label_smoothing for m in members]
    if len(set(smoothing)) > 1:
      self.hyper['label_smoothing'] = np.asarray(smoothing, np.float32)
    self.seeds = sorted({m.config.seed for m in members})
    self.stream_of = [self.seeds.index(m.config.seed) for m in members]
    self.mode = self.config.vectorize_mode
    self.steps_per_dispatch = self.config.steps_per_dispatch
    step = self._per_member(self._member_step, (0, 0, 0, 0))
    if self.steps_per_dispatch > 1:  # k steps in one dispatch: a scan over stacked batches.
      one_step = step
      step = lambda state, batches, hyper, active: jax.lax.scan(
          lambda s, b: one_step(s, b, hyper, active), state, batches)
    self._train = jax.jit(step, donate_argnums=0)
    self.eval = jax.jit(self._per_member(self._member_eval, (0, None, 0)))
    self._hyper_on_device = jax.device_put(self.hyper)
    self._first_batch = None
    # As for a single run: 'auto' keeps the data on the device where it fits.
    self.is_resident = resident.use_device(self.config.dataset, self.exp.info, self.devices, 1,
                                           models.loops_well(self.config.model))
    if self.is_resident:
      return self._start_resident()
    self._streams = [data.train_iterator(self.exp.data, self.exp.process_batch_size, seed)
                     for seed in self.seeds]  # Members with equal seeds read the same batches.

  def _start_resident(self) -> None:
    """One copy of the train split on the device; each member gathers its own seed's order."""
    cfg = self.config
    examples, order = pipeline.train_order(self.exp.data, cfg.batch_size, self.seeds[0])
    self._orders = [order.with_seed(seed) for seed in self.seeds]
    self._first_batch = {k: v[order.positions(0)] for k, v in examples.items()}
    self._examples = self._run_steps.resident_train(examples)  # Also the train split's eval.
    self._streams = [resident.Position() for _ in self.seeds]
    self.max_steps_per_dispatch = max(self.steps_per_dispatch, min(
        single_run.MAX_STEPS_PER_DISPATCH, cfg.total_steps, cfg.log_every, cfg.eval_every,
        cfg.checkpoint_every))
    self._run = jax.jit(dispatch.resident_steps(self._per_member(
        self._member_step, (0, 0, 0, 0)), self.max_steps_per_dispatch), donate_argnums=0)
    self._eval_resident = jax.jit(dispatch.resident_eval(
        lambda state, batch: self.eval(state, batch, self._hyper_on_device)))

  @functools.cached_property
  def _run_steps(self) -> single_run.Steps:
    """A single run's steps of this experiment: what a member's FLOPs and answers are counted
    with, as its separate run counts them (built once: its decoder compiles once)."""
    return single_run.Steps(self.exp)

  def _per_member(self, fn, in_axes: tuple):
    """`fn` over the members (arguments with axis None are shared): `jax.vmap`, or with
    vectorize_mode='unroll' K copies of `fn` on each member's slice, stacked, in one program."""
    if self.mode == 'vmap':
      return jax.vmap(fn, in_axes=in_axes)

    def unrolled(*args):
      outs = [fn(*[a if axis is None else member(a, k) for a, axis in zip(args, in_axes)])
              for k in range(self.members)]
      return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
    return unrolled

  def _loss_fn(self, hyper: dict):
    """The member's loss: the run's own, or with its traced label smoothing when that varies."""
    if 'label_smoothing' not in hyper:
      return self.exp.loss_fn
    return functools.partial(losses.LOSSES[self.config.loss],
                             label_smoothing=hyper['label_smoothing'])

  def _member_step(self, state: train_state.TrainState, batch: dict, hyper: dict, active):
    """`steps.train_step` with the member's own optimizer (traced learning rate and decay); a
    member that stopped early (`active` False) keeps its state as it was."""
    cfg = self.config
    tx = optim.create(cfg.optimizer, cfg.total_steps, cfg.skip_nonfinite,
                      **{name: hyper[name] for name in grouping.OPTIMIZER_SCALARS})
    new, sums = steps.train_step(state.replace(tx=tx), batch, task=self.task,
                                 loss_fn=self._loss_fn(hyper), skip_nonfinite=cfg.skip_nonfinite)
    new = new.replace(tx=state.tx)
    if cfg.early_stopping.patience:  # Else every member is always active: no select at all.
      new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)
    return new, sums

  def _member_eval(self, state: train_state.TrainState, batch: dict, hyper: dict) -> dict:
    return steps.eval_step(state, batch, task=self.task, loss_fn=self._loss_fn(hyper))

  # The loop's program interface (research/run/loop.py).

  def init_state(self) -> train_state.TrainState:
    """The members' fresh states stacked: each initialized from its own seed, as a run would."""
    keys = np.stack([jax.random.PRNGKey(m.config.seed) for m in self.experiments])
    return jax.jit(jax.vmap(self.exp.init_state))(keys)  # One compile, not one per operation.

  def restore(self, ckpt: checkpoint.Checkpointer, state: train_state.TrainState):
    step, saved = ckpt.restore_newest_good(train_state.state_to_save(state), *self._streams)
    log.info('resumed the group of %d from step %d', self.members, step)
    return step, train_state.state_from_saved(state, saved)

  def place(self, state: train_state.TrainState) -> train_state.TrainState:
    # On the device as the programs' outputs are (the resident split's sharding): a state
    # placed otherwise made the second dispatch compile the whole program again.
    return self.devices.replicate(state)

  def _next_batch(self) -> dict:
    batches = [next(s) for s in self._streams]
    return {key: np.stack([batches[s][key] for s in self.stream_of]) for key in batches[0]}

  def train(self, state: train_state.TrainState, active: np.ndarray, count: int | None = None):
    if self.is_resident:  # Positions [steps, members, batch]; the device gathers the batches.
      first = self._streams[0].step
      positions = np.zeros((self.max_steps_per_dispatch, self.members, self.config.batch_size),
                           np.int32)
      for i in range(count):
        rows = [order.positions(first + i) for order in self._orders]
        positions[i] = [rows[s] for s in self.stream_of]
      for stream in self._streams:
        stream.step = first + count
      state, stacked = self._run(state, self._examples, positions, np.int32(count),
                                 self._hyper_on_device, active)
      return state, (stacked, count)
    k = self.steps_per_dispatch
    batch = self._next_batch() if k == 1 else jax.tree.map(
        lambda *xs: np.stack(xs), *[self._next_batch() for _ in range(k)])
    if self._first_batch is None:  # Member 0's batch (its k batches when k > 1), for FLOPs.
      self._first_batch = jax.tree.map(lambda x: x[0] if k == 1 else x[:, 0], batch)
    return self._train(state, batch, self._hyper_on_device, active)

  def flops_per_step(self, state: train_state.TrainState) -> float | None:
    """XLA's FLOPs of one member's step (cheaper to lower than the whole group's program; a
    separate resident run counts its dispatched loop, a few hundred FLOPs more)."""
    return self._run_steps.flops_per_step(member(jax.device_get(state), 0), self._first_batch,
                                          stacked=False if self.is_resident else None)

  def window_to_host(self, window: list) -> list:
    if self.is_resident:  # (stacked sums, steps) per dispatch: one entry per step.
      host = jax.device_get([sums for sums, _ in window])
      return [row for sums, (_, count) in zip(host, window) for row in dispatch.rows(sums, count)]
    return jax.device_get(window)

  def member_sums(self, host_sums: dict, k: int) -> dict:
    return member(host_sums, k)

  def evaluate(self, state: train_state.TrainState, split: str) -> list[dict]:
    """Every member's metrics over the whole of `split` (the same padded batches as a run)."""
    sums = None
    if self.is_resident:  # One dispatch over the split on the device, all members at once.
      positions, mask = resident.eval_positions(self.exp.info.split_sizes[split],
                                                self.exp.eval_batch_size)
      sums = self._eval_resident(state, self._run_steps.resident_split(split), positions, mask)
    else:
      for batch in data.eval_batches(self.exp.data, split, self.exp.eval_batch_size):
        sums = metric_sums.add_sums(sums, self.eval(state, batch, self.hyper))
    host = jax.device_get(sums)
    return [self.task.summarize(member(host, k)) for k in range(self.members)]

  def exact_match(self, state: train_state.TrainState, split: str) -> list[float | None]:
    """Generation runs member by member, as it does per run."""
    if self.task.name != 'language_model':
      return [None] * self.members
    return [self._run_steps.exact_match(member(state, k), split) for k in range(self.members)]

  def save(self, ckpt: checkpoint.Checkpointer, step: int, state: train_state.TrainState) -> None:
    ckpt.save(step, jax.device_get(train_state.state_to_save(state)), *self._streams)

  def finish(self, state: train_state.TrainState, steps_per_member: list[int]) -> None:
    """Each member's final state into its own workdir, in the single-run checkpoint format (so
    `research eval` and `load_run` work on it), at the step the member ended at."""
    saved = jax.device_get(train_state.state_to_save(state))
    for k, (run_dir, step) in enumerate(zip(self.run_dirs, steps_per_member)):
      own = checkpoint.Checkpointer(run_dir, keep=self.config.keep_checkpoints)
      if own.latest_step() != step:  # Else saved before a kill in this final phase.
        own.save(step, self._member_checkpoint(saved, k),
                 self._streams[self.stream_of[k]])
        own.wait()
      own.close()

  def _member_checkpoint(self, saved: dict, k: int) -> dict:
    """Member `k` of a stacked saved state, in the structure a separate run checkpoints."""
    mine = member(saved, k)
    own = jax.tree.structure(jax.eval_shape(self.experiments[k].optimizer.init, mine['params']))
    return {**mine, 'opt_state': jax.tree.unflatten(own, jax.tree.leaves(mine['opt_state']))}

  def summary_extras(self, summary: dict) -> dict:
    del summary
    # Throughput is the group's: each member advanced `steps_per_second` steps per second, and
    # its `mfu` is its share of the device (the group's is `vectorized` times it).
    return {'vectorized': self.members, 'vectorized_group': str(self.group_dir),
            'param_counts': self.exp.param_counts()}


def train_vectorized(configs: list[ml_collections.ConfigDict], workdirs: list[str],
                     group_dir: str, *, max_steps: int | None = None) -> list[dict]:
  """Trains `configs` (see `grouping.vectorizable`) as one vmapped program; returns their summaries.

  `workdirs[k]` receives member k's config.json, metrics.jsonl, summary.json and final
  checkpoint; `group_dir` holds the group's checkpoints, and rerunning the same call resumes from
  them. `max_steps` stops this call after that step with a checkpoint (a time-boxed slice; the
  next call resumes) and returns `{'steps': step, 'finished': False}` per member.
  SIGTERM / SIGINT checkpoint and raise `preemption.Preempted`, as in `research train`.
  """
  reason = grouping.vectorizable(configs)
  if reason is not None:
    raise UserError(f'these {len(configs)} runs cannot be trained as one vectorized group: they '
                    f'{reason}')
  if jax.process_count() > 1:
    raise UserError('a vectorized group runs in one process; start it without jax.distributed')
  paths = [str(pathlib.Path(w).absolute()) for w in workdirs]
  if len(paths) != len(configs) or len(set(paths)) != len(paths):
    raise UserError(f'train_vectorized needs one distinct workdir per config: got {len(paths)} '
                    f'workdirs ({len(set(paths))} distinct) for {len(configs)} configs')
  with preemption.stop_on_signals() as stop_request:  # Honoured from here to the end.
    experiments = [parts.build(grouping.on_one_device(c)) for c in configs]  # Validates, resolves.
    stop_request.check('before training started; nothing was written')
    group_dir = workdir_lib.Workdir(group_dir)
    run_dirs = [workdir_lib.Workdir(p, exp.data.record()) for p, exp in zip(paths, experiments)]
    with contextlib.ExitStack() as locks:
      for directory in (group_dir, *run_dirs):
        locks.enter_context(directory.lock())
      for run_dir, exp in zip(run_dirs, experiments):
        run_dir.check_same_experiment(exp.config)  # A member's workdir may hold an earlier run.
      group = _Group(experiments, group_dir.path, [d.path for d in run_dirs])
      members = [loop.Member(d, exp.config, None, f'{d.path} (vectorized member {k}): ')
                 for k, (d, exp) in enumerate(zip(run_dirs, experiments))]
      with checkpoint.Checkpointer(group_dir.path, keep=group.config.keep_checkpoints,
                                   data_streams=len(group.seeds)) as ckpt:
        grouping.check_group_file(group_dir, run_dirs, ckpt.latest_step() is not None)
        return loop.run(group, ckpt, members, group_dir.path, stop_request, end_step=max_steps)

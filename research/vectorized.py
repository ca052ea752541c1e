"""Vectorized runs: K configs that differ only in seed and scalar hyper-parameters, trained as ONE
compiled program with `jax.vmap`.

    reason = vectorizable(configs)            # None, or why not ("differ in model.hidden_sizes")
    summaries = train_vectorized(configs, workdirs, group_dir)

Every member keeps what a separate `research train` run would have: its own initialization and
dropout keys (from its seed), its own data stream (a grain iterator seeded like a separate run's,
its batches stacked along a leading member axis), its own learning rate and weight decay (the
optimizer is rebuilt inside the vmapped step from the member's values, so schedules, clipping
and L2 are the same code as a separate run's) and its own label smoothing. The pure
`train.train_step` and `train.eval_step` are vmapped over the stacked train state; evaluation
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
same call resumes from them. Kept simple: one device, one process, no early stopping.
"""
import contextlib
import functools
import json
import logging
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from research import checkpoint, data, experiment, losses, metrics, optim, preemption
from research import train
from research import progress as progress_lib
from research import workdir as workdir_lib
from research.errors import UserError

log = logging.getLogger('research')

# Config keys that may differ between members; the optimizer's are passed to every vmapped step,
# label smoothing only when it differs (else every member uses the run's own loss function).
OPTIMIZER_SCALARS = ('learning_rate', 'weight_decay')
VARYING = ('seed', 'label_smoothing') + tuple(f'optimizer.{name}' for name in OPTIMIZER_SCALARS)
GROUP_FILE = 'group.json'


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
  `label_smoothing`; they must not ask for several devices (`num_devices` None or 1: a group
  always runs on one device, the first) and must not use early stopping (members would stop at
  different steps) or gradient accumulation. `steps_per_dispatch` is ignored: the group
  dispatches one (vmapped) step at a time. Does not start JAX's backend, so that a parent process
  (the sweep runner) can ask without taking an accelerator from its children.
  """
  if not configs:
    return 'are none: nothing to train'
  flat = [_flatten(c.to_dict()) for c in configs]
  keys = set().union(*flat)
  differ = sorted(k for k in keys - set(VARYING)
                  if any(f.get(k, '<unset>') != flat[0].get(k, '<unset>') for f in flat[1:]))
  if differ:
    return f"differ in {', '.join(differ)}"
  first = configs[0]
  if first.get('num_devices') not in (None, 1):
    return (f"ask for num_devices={first.num_devices}; a vectorized group runs on one device "
            "(num_devices None or 1)")
  stopping = first.get('early_stopping')
  if stopping is not None and stopping.get('patience', 0) > 0:
    return 'use early stopping (members would stop at different steps)'
  if first.get('grad_accum_steps', 1) > 1:
    return 'use gradient accumulation (grad_accum_steps > 1), which vectorized runs do not'
  return None


def _member(tree, k: int):
  """Member `k`'s slice of a stacked pytree."""
  return jax.tree.map(lambda x: x[k], tree)


class _Group:
  """The compiled steps of a group (vmapped or unrolled), its data streams and hyper-parameters."""

  def __init__(self, members: list[experiment.Experiment]):
    self.members = members
    decays = [m.config.optimizer.weight_decay for m in members]
    # The member with the largest weight decay gives the optimizer's structure (an L2 term when
    # any member decays; decay 0 then adds 0 * params, which changes nothing).
    self.exp = members[int(np.argmax(decays))]
    self.hyper = {name: np.asarray([m.config.optimizer[name] for m in members], np.float32)
                  for name in OPTIMIZER_SCALARS}
    smoothing = [m.config.get('label_smoothing', 0.0) for m in members]
    if len(set(smoothing)) > 1:
      self.hyper['label_smoothing'] = np.asarray(smoothing, np.float32)
    self.seeds = sorted({m.config.seed for m in members})
    self.stream_of = [self.seeds.index(m.config.seed) for m in members]
    self.mode = self.exp.config.get('vectorize_mode', 'vmap')
    self.train = jax.jit(self._per_member(self._member_step, (0, 0, 0)), donate_argnums=0)
    self.eval = jax.jit(self._per_member(self._member_eval, (0, None, 0)))

  def _per_member(self, fn, in_axes: tuple):
    """`fn` over the members (arguments with axis None are shared): `jax.vmap`, or with
    vectorize_mode='unroll' K copies of `fn` on each member's slice, stacked, in one program."""
    if self.mode == 'vmap':
      return jax.vmap(fn, in_axes=in_axes)

    def unrolled(*args):
      outs = [fn(*[a if axis is None else _member(a, k) for a, axis in zip(args, in_axes)])
              for k in range(len(self.members))]
      return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
    return unrolled

  def _loss_fn(self, hyper: dict):
    """The member's loss: the run's own, or with its traced label smoothing when that varies."""
    if 'label_smoothing' not in hyper:
      return self.exp.loss_fn
    return functools.partial(losses.LOSSES[self.exp.config.loss],
                             label_smoothing=hyper['label_smoothing'])

  def _member_step(self, state: experiment.TrainState, batch: dict, hyper: dict):
    """`train.train_step` with the member's own optimizer (traced learning rate and decay)."""
    cfg = self.exp.config
    tx = optim.create(cfg.optimizer, cfg.total_steps, cfg.get('skip_nonfinite', False),
                      **{name: hyper[name] for name in OPTIMIZER_SCALARS})
    new, sums = train.train_step(state.replace(tx=tx), batch, task=self.exp.task,
                                 loss_fn=self._loss_fn(hyper), skip_nonfinite=cfg.skip_nonfinite)
    return new.replace(tx=state.tx), sums

  def _member_eval(self, state: experiment.TrainState, batch: dict, hyper: dict) -> dict:
    return train.eval_step(state, batch, task=self.exp.task, loss_fn=self._loss_fn(hyper))

  def member_flops(self, state: experiment.TrainState, batch: dict) -> float | None:
    """XLA's FLOPs of one member's step, counted as a separate run counts its own (cheaper to
    lower than the whole group's program, and the same number in both summaries)."""
    return train.Steps(self.exp).flops_per_step(_member(state, 0), _member(batch, 0))

  def init_state(self) -> experiment.TrainState:
    """The members' fresh states stacked: each initialized from its own seed, as a run would."""
    keys = np.stack([jax.random.PRNGKey(m.config.seed) for m in self.members])
    return jax.jit(jax.vmap(self.exp.init_state))(keys)  # One compile, not one per operation.

  def streams(self) -> list:
    """One training iterator per distinct seed (members with equal seeds read the same batches)."""
    cfg = self.exp.config
    return [data.train_iterator(cfg.dataset, self.exp.process_batch_size, seed)
            for seed in self.seeds]

  def next_batch(self, streams: list) -> dict:
    batches = [next(s) for s in streams]
    return {key: np.stack([batches[s][key] for s in self.stream_of]) for key in batches[0]}

  def evaluate(self, state: experiment.TrainState, split: str) -> list[dict]:
    """Every member's metrics over the whole of `split` (the same padded batches as a run)."""
    cfg, sums = self.exp.config, None
    for batch in data.eval_batches(cfg.dataset, split, self.exp.eval_batch_size):
      sums = metrics.add_sums(sums, self.eval(state, batch, self.hyper))
    host = jax.device_get(sums)
    return [self.exp.task.summarize(_member(host, k)) for k in range(len(self.members))]

  def member_checkpoint(self, saved: dict, k: int) -> dict:
    """Member `k` of a stacked saved state, in the structure a separate run checkpoints."""
    mine = _member(saved, k)
    own = jax.tree.structure(jax.eval_shape(self.members[k].optimizer.init, mine['params']))
    return {**mine, 'opt_state': jax.tree.unflatten(own, jax.tree.leaves(mine['opt_state']))}


def train_vectorized(configs: list[ml_collections.ConfigDict], workdirs: list[str],
                     group_dir: str, *, max_steps: int | None = None) -> list[dict]:
  """Trains `configs` (see `vectorizable`) as one vmapped program; returns their summaries.

  `workdirs[k]` receives member k's config.json, metrics.jsonl, summary.json and final
  checkpoint; `group_dir` holds the group's checkpoints, and rerunning the same call resumes from
  them. `max_steps` stops this call after that step with a checkpoint (a time-boxed slice; the
  next call resumes) and returns `{'steps': step, 'finished': False}` per member.
  SIGTERM / SIGINT checkpoint and raise `preemption.Preempted`, as in `research train`.
  """
  reason = vectorizable(configs)
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
    return _train_group(configs, paths, group_dir, max_steps, stop_request)


def _train_group(configs: list[ml_collections.ConfigDict], paths: list[str], group_dir: str,
                 max_steps: int | None, stop_request: preemption.StopRequest) -> list[dict]:
  members = [experiment.build(_on_one_device(c)) for c in configs]  # Validates and resolves.
  stop_request.check('before training started; nothing was written')
  group = _Group(members)
  group_dir = workdir_lib.Workdir(group_dir)
  run_dirs = [workdir_lib.Workdir(p) for p in paths]
  with contextlib.ExitStack() as locks:
    for directory in (group_dir, *run_dirs):
      locks.enter_context(directory.lock())
    return _run(group, group_dir, run_dirs, max_steps, stop_request)


def _on_one_device(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config` with num_devices=1 (its config.json then says where it ran)."""
  config = config.copy_and_resolve_references()
  config.num_devices = 1
  return config


def _check_group_file(group_dir: workdir_lib.Workdir, run_dirs: list, resuming: bool) -> None:
  """Records the member workdirs; refuses to resume a group_dir that trained other members."""
  path, members = group_dir.path / GROUP_FILE, [str(d.path) for d in run_dirs]
  if resuming and path.exists():
    recorded = json.loads(path.read_text())['members']
    if recorded != members:
      raise UserError(f'group_dir {str(group_dir.path)!r} holds checkpoints of another group '
                      f'({len(recorded)} members: {recorded[0]}, ...); use a new group_dir')
  path.write_text(json.dumps({'members': members}, indent=2) + '\n')


def _run(group: _Group, group_dir: workdir_lib.Workdir, run_dirs: list,
         max_steps: int | None, stop_request: preemption.StopRequest) -> list[dict]:
  """The body of `train_vectorized`, holding every directory's lock."""
  cfg, k_members = group.exp.config, len(group.members)
  ckpt = checkpoint.Checkpointer(group_dir.path, keep=cfg.get('keep_checkpoints', 3),
                                 data_streams=len(group.seeds))
  start = ckpt.latest_step()
  _check_group_file(group_dir, run_dirs, start is not None)
  for run_dir, member in zip(run_dirs, group.members):
    run_dir.check_same_experiment(member.config)  # A member's workdir may hold an earlier run.
  summaries = [run_dir.summary() for run_dir in run_dirs]
  if (start or 0) >= cfg.total_steps and all(s is not None for s in summaries):
    log.info('group %s already finished at step %d; nothing to do', group_dir.path, start)
    ckpt.close()
    return summaries
  stop_request.check('before training started; the checkpoints are unchanged')
  for run_dir, member in zip(run_dirs, group.members):
    run_dir.record_start(member.config, None)  # Only now: the group will train.
  writers = [run_dir.metric_writer(m.config) for run_dir, m in zip(run_dirs, group.members)]
  # One progress display for the group, showing the first member's loss and validation metric.
  progress = progress_lib.Progress.from_config(cfg)
  writers[0] = metrics.MultiWriter([writers[0], progress])

  state, streams = group.init_state(), group.streams()
  if start is not None:
    start, saved = ckpt.restore_newest_good(experiment.state_to_save(state), *streams)
    state = experiment.state_from_saved(state, saved)
    log.info('resumed the group of %d from step %d', k_members, start)
  start = start or 0
  for writer in writers:  # Rows after the group's step (all, on a fresh start) are redone.
    writer.truncate_after(start)

  end = cfg.total_steps if max_steps is None else min(max_steps, cfg.total_steps)
  hyper = jax.device_put(group.hyper)
  timer, window, compile_seconds, last_validation = metrics.Stopwatch(), [], None, None
  flops_per_step = None
  wall_start, last_step, skipped = time.time(), start, [0] * k_members
  with progress:
    for step in range(start + 1, end + 1):
      batch = group.next_batch(streams)
      first = compile_seconds is None
      tic = time.perf_counter()
      state, sums = group.train(state, batch, hyper)
      progress.update(step)
      window.append(sums)
      last_step = step
      if first:
        jax.block_until_ready(sums)
        compile_seconds = time.perf_counter() - tic  # Compilation plus one step.
        flops_per_step = group.member_flops(state, batch)
        timer.start()

      preempted = stop_request.signum
      do_eval = step % cfg.eval_every == 0 or step == cfg.total_steps
      do_save = (step % cfg.checkpoint_every == 0 or step == cfg.total_steps or preempted
                 or step == end)
      if do_eval or do_save or step % cfg.get('log_every', 100) == 0:
        jax.block_until_ready(state)
        timer.stop()
        host_window = jax.device_get(window)
        for k, (run_dir, writer) in enumerate(zip(run_dirs, writers)):
          row, bad = train.window_row(group.exp.task, [_member(w, k) for w in host_window])
          if bad is not None and not cfg.get('skip_nonfinite', False):
            ckpt.wait()
            raise train.nonfinite_error(step - len(window) + 1 + bad, ckpt,
                                        f'{run_dir.path} (vectorized member {k}): ')
          skipped[k] += row.get('skipped_nonfinite', 0)
          writer.write(step, 'train', row)
        window = []
        if do_eval:
          last_validation = group.evaluate(state, 'validation')
          for writer, row in zip(writers, last_validation):
            writer.write(step, 'validation', row)
        if do_save:
          ckpt.save(step, jax.device_get(experiment.state_to_save(state)), *streams)
        if preempted:
          ckpt.wait()
          raise preemption.Preempted(preempted, f"after step {step}; a checkpoint was "
                                     "written: rerun the same command to resume")
        timer.start()
  timer.stop()
  ckpt.wait()
  if last_step < cfg.total_steps:  # Stopped at max_steps: the next call resumes.
    for writer in writers:
      writer.close()
    ckpt.close()
    return [{'steps': last_step, 'finished': False} for _ in run_dirs]

  stop_request.check(f'during the final evaluation; the checkpoint at step {last_step} holds the '
                     'trained state: rerun the same command to evaluate it')
  finals = _final_metrics(group, state, last_validation)
  for k, final in enumerate(finals):
    train.check_trained(final, skipped[k], last_step - start, cfg.skip_nonfinite,
                        f'{run_dirs[k].path} (vectorized member {k}): ')
  saved = jax.device_get(experiment.state_to_save(state))
  timed_steps = last_step - start - 1  # The first step of a process includes compilation.
  out = []
  for k, (run_dir, writer, final) in enumerate(zip(run_dirs, writers, finals)):
    own = checkpoint.Checkpointer(run_dir.path, keep=cfg.get('keep_checkpoints', 3))
    if own.latest_step() != last_step:  # Else saved before a kill in this final phase.
      own.save(last_step, group.member_checkpoint(saved, k), streams[group.stream_of[k]])
      own.wait()
    own.close()
    writer.write(last_step, 'test', final['test'])
    writer.close()
    # Throughput is the group's: each member advanced `steps_per_second` steps per second,
    # and its `mfu` is its share of the device (the group's is `vectorized` times it).
    summary = train.run_summary(
        cfg, final, last_step=last_step, start=start, timed_steps=timed_steps,
        timed_seconds=timer.seconds, compile_seconds=compile_seconds, wall_start=wall_start,
        skipped=skipped[k], early_stopping=None, flops_per_step=flops_per_step,
        devices=group.exp.devices)
    summary.update(vectorized=k_members, vectorized_group=str(group_dir.path))
    out.append(run_dir.write_summary(summary, group.exp.devices))
  ckpt.close()
  return out


def _final_metrics(group: _Group, state, last_validation: list[dict] | None) -> list[dict]:
  """Each member's train (eval mode), validation and test metrics, with exact match where the
  task has prompts (generation runs member by member, as it does per run)."""
  splits = {'train': group.evaluate(state, 'train'),
            'validation': last_validation or group.evaluate(state, 'validation'),
            'test': group.evaluate(state, 'test')}
  finals = [{split: rows[k] for split, rows in splits.items()} for k in range(len(group.members))]
  if group.exp.task.name == 'language_model':
    steps = train.Steps(group.exp)
    for k, final in enumerate(finals):
      for split in ('validation', 'test'):
        exact = steps.exact_match(_member(state, k), split)
        if exact is not None:
          final[split] = {**final[split], 'exact_match': exact}
  return finals

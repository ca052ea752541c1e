"""Training: the pure steps, and `train_and_evaluate(config, workdir)`, the loop around them.

The loop reads a batch, runs the compiled `train_step`, logs train metrics every `log_every`
steps, evaluates the whole validation split every `eval_every` steps, checkpoints every
`checkpoint_every` steps, and at the end evaluates train (in eval mode), validation and test into
`summary.json`. Re-running on the same workdir resumes from the newest checkpoint; because the
data iterator's position and the RNG key are in the checkpoint, the resumed run is the same run.
"""
import contextlib
import functools
import logging
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from research import checkpoint, data, early_stopping, experiment, generate, metrics
from research import dispatch, flops, microbatch
from research import preemption, profiling, run_metadata, tasks
from research import progress as progress_lib
from research import workdir as workdir_lib
from research.errors import UserError

log = logging.getLogger('research')


class NonFiniteError(RuntimeError):
  """A NaN or Inf appeared in the loss or the gradients (and skip_nonfinite is off)."""


def nonfinite_error(step: int, ckpt: checkpoint.Checkpointer, run: str = '') -> NonFiniteError:
  """The error that stops a run whose loss or gradients at `step` are not finite."""
  last = ckpt.latest_step()
  last = ('no checkpoint was written yet' if last is None
          else f'the last good checkpoint is step {last}')
  return NonFiniteError(
      f"{run}non-finite loss or gradients at step {step}; {last}. Lower the learning rate, clip "
      "gradients (optimizer.grad_clip_norm) or set skip_nonfinite=True")


def window_row(task: tasks.Task, host_window: list[dict]) -> tuple[dict, int | None]:
  """The `train` row of a closed window of per-step metric sums (host arrays), and the index in
  the window of its first step with a non-finite loss or gradient norm (None when all are
  finite). Such steps are left out of the row's means and counted in its `skipped_nonfinite`."""
  finite = [bool(np.isfinite(w['loss'][0]) and np.isfinite(w['grad_norm'][0]))
            for w in host_window]
  kept = [w for w, ok in zip(host_window, finite) if ok]
  row = task.summarize(metrics.sum_window(kept)) if kept else {}
  if len(kept) < len(host_window):
    row['skipped_nonfinite'] = len(host_window) - len(kept)
  return row, None if all(finite) else finite.index(False)


def dropout_rng(base: jax.Array, step: jax.Array, axis_name: str | None = None) -> jax.Array:
  """The dropout key of one step: `base` folded with the step, and with the device index under
  pmap (each device then draws its own masks; under a mesh the batch is one global array)."""
  rng = jax.random.fold_in(base, step)
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  return rng


def _apply(state: experiment.TrainState, params, inputs, *, train: bool, rng=None):
  """Runs the model; in training, BatchNorm models also return their updated statistics."""
  variables = {'params': params}
  if state.batch_stats is None:
    rngs = {'dropout': rng} if train else {}
    return state.apply_fn(variables, inputs, train=train, rngs=rngs), None
  variables['batch_stats'] = state.batch_stats
  if not train:
    return state.apply_fn(variables, inputs, train=False), None
  logits, updates = state.apply_fn(variables, inputs, train=True, rngs={'dropout': rng},
                                   mutable=['batch_stats'])
  return logits, updates['batch_stats']


def train_step(state: experiment.TrainState, batch: dict, *, task: tasks.Task,
               loss_fn: Callable, axis_name: str | None = None, grad_accum_steps: int = 1,
               skip_nonfinite: bool = False) -> tuple[experiment.TrainState, dict]:
  """One gradient step on `batch`; returns the new state and metric (sum, count) pairs.

  Pure: the dropout (and token-masking) key comes from `state.rng` and the step
  (`dropout_rng`). With `axis_name` set (pmap), gradients are averaged and metric sums added
  across devices, and BatchNorm averages its statistics over the same axis; under a mesh the
  batch is one global array and XLA inserts the reductions. With `grad_accum_steps` > 1 the
  gradient is accumulated over that many micro-batches (research/microbatch.py).
  """
  dropout_key, task_key = jax.random.split(dropout_rng(state.rng, state.step, axis_name))
  if grad_accum_steps > 1:
    grads, sums, batch_stats = microbatch.accumulate(
        functools.partial(_summed_loss_gradients, state, task=task, loss_fn=loss_fn),
        state.params, state.batch_stats, batch, grad_accum_steps, dropout_key, axis_name)
    return _update(state, grads, sums, batch_stats, skip_nonfinite)
  inputs, targets = task.prepare(batch, task_key)

  def objective(params):
    logits, batch_stats = _apply(state, params, inputs, train=True, rng=dropout_key)
    loss, sums = task.loss_and_sums(loss_fn, logits, targets)
    return loss, (sums, batch_stats)

  grads, (sums, batch_stats) = jax.grad(objective, has_aux=True)(state.params)
  if axis_name is not None:
    grads = jax.lax.pmean(grads, axis_name)
    sums = jax.lax.psum(sums, axis_name)
  return _update(state, grads, sums, batch_stats, skip_nonfinite)


def _update(state: experiment.TrainState, grads, sums: dict, batch_stats,
            skip_nonfinite: bool = False) -> tuple[experiment.TrainState, dict]:
  """Applies the (averaged) gradients; adds the gradient norm to the metric sums.

  With `skip_nonfinite`, finite gradients can still overflow a parameter (a huge learning rate):
  such an update is dropped (parameters, optimizer state and BatchNorm statistics stay as they
  were; the step counter advances) and the step's gradient norm is reported as NaN, which the
  loop counts as a skipped step, as it does non-finite gradients."""
  # The norm of the (averaged) gradient; a (value, 1) pair so windows average it per step.
  norm = optax.tree.norm(grads)
  new = state.apply_gradients(grads=grads)
  if batch_stats is not None:
    new = new.replace(batch_stats=batch_stats)
  if skip_nonfinite:
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in
                                jax.tree.leaves((new.params, new.batch_stats))]))
    kept = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, state)
    new, norm = kept.replace(step=new.step), jnp.where(finite, norm, jnp.nan)
  sums['grad_norm'] = (norm, jnp.float32(1.0))
  return new, sums


def _summed_loss_gradients(state: experiment.TrainState, params, batch_stats, batch: dict,
                           rng: jax.Array, *, task: tasks.Task, loss_fn: Callable):
  """Gradients of one micro-batch's summed weighted loss, its metric sums and BatchNorm
  statistics (the micro-batch's own task key and dropout key both derive from `rng`)."""
  dropout_key, task_key = jax.random.split(rng)
  inputs, targets = task.prepare(batch, task_key)
  micro_state = state.replace(batch_stats=batch_stats)

  def objective(params):
    logits, new_stats = _apply(micro_state, params, inputs, train=True, rng=dropout_key)
    _, sums = task.loss_and_sums(loss_fn, logits, targets)
    return sums['loss'][0], (sums, new_stats)

  grads, (sums, new_stats) = jax.grad(objective, has_aux=True)(params)
  return grads, sums, batch_stats if new_stats is None else new_stats


def train_steps(state: experiment.TrainState, batches: dict, **step_kwargs
                ) -> tuple[experiment.TrainState, dict]:
  """`train_step` over a stack of k batches ([k, batch, ...]) with `lax.scan`: k steps in one
  dispatch (`config.steps_per_dispatch`); the metric sums come back stacked, one row per step."""
  return jax.lax.scan(lambda s, b: train_step(s, b, **step_kwargs), state, batches)


def eval_step(state: experiment.TrainState, batch: dict, *, task: tasks.Task,
              loss_fn: Callable, axis_name: str | None = None) -> dict:
  """Metric (sum, count) pairs over the real examples of `batch` (`mask` True).

  Masked-token prediction hides the same positions on every evaluation (a fixed key)."""
  inputs, targets = task.prepare(batch, jax.random.PRNGKey(0))
  logits, _ = _apply(state, state.params, inputs, train=False)
  _, sums = task.loss_and_sums(loss_fn, logits, targets)
  if axis_name is not None:
    sums = jax.lax.psum(sums, axis_name)
  return sums


class Steps:
  """The compiled steps of one experiment, and whole-split evaluation with them."""

  def __init__(self, exp: experiment.Experiment):
    self.exp = exp
    kwargs = dict(task=exp.task, loss_fn=exp.loss_fn, axis_name=exp.devices.axis_name)
    accum = dict(grad_accum_steps=exp.config.grad_accum_steps,
                 skip_nonfinite=exp.config.skip_nonfinite)
    self.per_dispatch = exp.config.get('steps_per_dispatch', 1)
    step = train_steps if self.per_dispatch > 1 else train_step
    self.train = exp.devices.compile(functools.partial(step, **kwargs, **accum))
    self._one_step = functools.partial(train_step, **kwargs, **accum)  # What FLOPs count.
    self.eval = exp.devices.compile(functools.partial(eval_step, **kwargs), donate_state=False)
    new_tokens = exp.info.input_shape[0] - 1  # Compiled once, used for every split.
    self._answers = jax.jit(lambda params, tokens, lengths: generate.answer_exact_match(
        generate.generate(exp.model, params, tokens, lengths, new_tokens), tokens, lengths))

  def flops_per_step(self, state: experiment.TrainState, host_batch: dict) -> float | None:
    """XLA's count of the FLOPs of one training step on the global batch (research/flops.py)."""
    return flops.train_step_flops(self._one_step, state, host_batch,
                                  axis_name=self.exp.devices.axis_name,
                                  stacked=self.per_dispatch > 1)

  def evaluate(self, state: experiment.TrainState, split: str) -> dict:
    """Loss and accuracy over every example of `split`, each counted once."""
    cfg, devices = self.exp.config, self.exp.devices
    batch_size = self.exp.eval_batch_size // jax.process_count()
    sums = None
    for batch in data.eval_batches(cfg.dataset, split, batch_size,
                                   jax.process_index(), jax.process_count()):
      batch_sums = self.eval(state, devices.shard_batch(batch))
      if devices.needs_step_sync:
        jax.block_until_ready(batch_sums)
      sums = metrics.add_sums(sums, batch_sums)
    return self.exp.task.summarize(devices.metrics_to_host(sums))


  def exact_match(self, state: experiment.TrainState, split: str) -> float | None:
    """Share of `split`'s prompts whose greedy generated answer is exactly right.

    Only for next-token prediction on a dataset with prompts (e.g. `addition`); None otherwise.
    Runs on one device with the host's copy of the parameters: generation is evaluation-only.
    """
    if self.exp.task.name != 'language_model':
      return None
    params = jax.device_put(self.exp.devices.to_host(state.params), jax.local_devices()[0])
    right = total = 0
    cfg = self.exp.config
    for batch in data.eval_batches(cfg.dataset, split,
                                   self.exp.eval_batch_size // jax.process_count(),
                                   jax.process_index(), jax.process_count()):
      lengths = batch.get('prompt_length')
      if lengths is None or not lengths[batch['mask']].all():
        return None  # No prompts: nothing to answer.
      matches = np.asarray(self._answers(params, batch['input'], np.maximum(lengths, 1)))
      right += int(matches[batch['mask']].sum())
      total += int(batch['mask'].sum())
    return right / total if total else None


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       source: run_metadata.ConfigSource | None = None,
                       stop_request: preemption.StopRequest | None = None) -> dict:
  """Trains `config` in `workdir` (resuming if it holds checkpoints); returns the summary.

  `source` (the config file, argument and overrides) is recorded in run.json for reports.
  `stop_request`: the CLI's, set by a signal since the process started; without one, SIGTERM and
  SIGINT are handled for the duration of this call (research/preemption.py)."""
  log.info('setting up %s: model %s on %s', workdir, config.model.name, config.dataset.name)
  with preemption.stop_on_signals(stop_request) as stop_request:
    exp = experiment.build(config)  # First: a bad config must not leave an empty workdir behind.
    exp.devices.check_batch(exp.eval_batch_size, 'config.eval_batch_size')
    profiling.steps_to_trace(exp.config)  # Checks profile_steps against total_steps.
    stop_request.check('before training started; nothing was written')
    run_dir = workdir_lib.Workdir(workdir)
    with run_dir.lock():
      return _run(exp, run_dir, source, stop_request)


def _run(exp: experiment.Experiment, run_dir: workdir_lib.Workdir,
         source: run_metadata.ConfigSource | None, stop_request: preemption.StopRequest) -> dict:
  """The body of `train_and_evaluate`, holding the workdir's lock."""
  cfg = exp.config
  run_dir.check_same_experiment(cfg)  # Whenever config.json exists, checkpoints or not.
  ckpt = checkpoint.Checkpointer(run_dir.path, keep=cfg.keep_checkpoints)
  try:
    summary = _train(exp, run_dir, ckpt, source, stop_request)
  except BaseException:
    with contextlib.suppress(Exception):  # The run's own error is the one to report.
      ckpt.close()  # Waits for a save in flight and stops Orbax's threads.
    raise
  ckpt.close()
  return summary


def _train(exp: experiment.Experiment, run_dir: workdir_lib.Workdir,
           ckpt: checkpoint.Checkpointer, source: run_metadata.ConfigSource | None,
           stop_request: preemption.StopRequest) -> dict:
  cfg = exp.config
  state = exp.init_state()
  train_iter = data.train_iterator(cfg.dataset, exp.process_batch_size, cfg.seed,
                                   jax.process_index(), jax.process_count())
  start = 0
  if ckpt.latest_step() is not None:
    start, saved = ckpt.restore_newest_good(
        experiment.state_to_save(exp.devices.restore_target(state)), train_iter)
    state = experiment.state_from_saved(state, saved)
  stopper = early_stopping.from_config(cfg)
  rows = [r for r in run_dir.metric_rows() if r['step'] <= start]
  stop = any([stopper.update(row['step'], row)  # Replays the decisions made before a resume.
              for row in rows if row['split'] == 'validation'])
  if (start >= cfg.total_steps or stop) and run_dir.summary() is not None:
    log.info('%s already finished at step %d; nothing to do', run_dir.path, start)
    return run_dir.summary()
  kept = 'before training resumed; the checkpoints are unchanged' if start else (
      'before training started; nothing was trained')
  stop_request.check(kept)

  run_dir.record_start(cfg, source)  # Only now: training (or the final evaluation) will run.
  # Live progress reads the train loss and validation metric from the rows written here.
  progress = progress_lib.Progress.from_config(cfg, enabled=run_dir.is_writer)
  writer = metrics.MultiWriter([run_dir.metric_writer(cfg), progress])
  dropped = writer.truncate_after(start)  # Rows of a killed attempt after the restored step.
  if start:
    log.info('resumed from step %d (%d metric rows after it dropped)', start, dropped)
  skipped_before = sum(r.get('skipped_nonfinite', 0) for r in rows if r['split'] == 'train')

  steps = Steps(exp)
  devices = exp.devices
  state = devices.place_state(state)
  per_dispatch = steps.per_dispatch  # Steps run k at a time; every interval is a multiple of k.
  if start % per_dispatch:
    raise UserError(f"the newest checkpoint is at step {start}, not a multiple of "
                    f"config.steps_per_dispatch={per_dispatch}; resume with a k that divides it")
  flops_per_step = None
  timer, window, compile_seconds, last_validation = metrics.Stopwatch(), [], None, None
  wall_start, last_step, skipped = time.time(), start, 0
  profiler = profiling.StepTrace(profiling.steps_to_trace(cfg), run_dir.path / 'profile',
                                 cfg.steps_per_dispatch)
  with progress, profiler:
    for step in range(start + per_dispatch, (cfg.total_steps if not stop else start) + 1,
                      per_dispatch):
      if step == start + per_dispatch:  # A signal that came during set-up: stop before compiling.
        stop_request.check(kept)
      profiler.before_step(step, state)
      host_batch = dispatch.next_batches(train_iter, per_dispatch)
      batch = devices.shard_batch(host_batch, stacked=per_dispatch > 1)
      first = compile_seconds is None
      tic = time.perf_counter()
      state, sums = steps.train(state, batch)
      progress.update(step)
      window.append(sums)
      last_step = step
      if first or devices.needs_step_sync:
        jax.block_until_ready(sums)
      if first:
        compile_seconds = time.perf_counter() - tic  # Compilation plus one step: not throughput.
        flops_per_step = steps.flops_per_step(state, host_batch)
        timer.start()

      preempted = stop_request.signum  # Read once: a signal may arrive at any moment.
      do_eval = step % cfg.eval_every == 0 or step == cfg.total_steps
      do_save = step % cfg.checkpoint_every == 0 or step == cfg.total_steps or preempted
      if do_eval or do_save or step % cfg.log_every == 0:
        jax.block_until_ready(state)
        timer.stop()
        # The window also closes at every checkpoint, so a resumed run logs the same rows.
        host_window = dispatch.per_step(jax.device_get(devices.metrics_to_host(window)),
                                        per_dispatch)
        row, bad = window_row(exp.task, host_window)
        if bad is not None and not cfg.skip_nonfinite:
          ckpt.wait()
          raise nonfinite_error(step - len(host_window) + 1 + bad, ckpt)
        skipped += row.get('skipped_nonfinite', 0)
        writer.write(step, 'train', row)
        window = []
        if do_eval:
          last_validation = steps.evaluate(state, 'validation')
          writer.write(step, 'validation', last_validation)
          stop = stopper.update(step, last_validation)
        if do_save or stop:
          ckpt.save(step, devices.for_checkpoint(experiment.state_to_save(state)), train_iter)
        if preempted:
          ckpt.wait()
          raise preemption.Preempted(preempted, f"after step {step}; a checkpoint was written: "
                                     "rerun the same command to resume")
        if stop:
          log.info('early stopping at step %d: validation %s has not improved on %.4g (step %d) '
                   'for %d evaluations', step, stopper.metric, stopper.best, stopper.best_step,
                   stopper.patience)
          break
        timer.start()
  timer.stop()
  ckpt.wait()

  timed_steps = last_step - start - per_dispatch  # The first dispatch includes compilation.
  during_final = (f"during the final evaluation; the checkpoint at step {last_step} holds the "
                  "trained state: rerun the same command to evaluate it")
  final = {}
  for split in ('train', 'validation', 'test'):  # A signal is honoured between splits.
    stop_request.check(during_final)
    final[split] = (last_validation if split == 'validation' and last_validation
                    else steps.evaluate(state, split))
  for split in ('validation', 'test'):
    stop_request.check(during_final)
    exact = steps.exact_match(state, split)
    if exact is not None:
      final[split] = {**final[split], 'exact_match': exact}
  stop_request.check(during_final)
  skipped += skipped_before
  check_trained(final, skipped, last_step, cfg.skip_nonfinite)
  writer.write(last_step, 'test', final['test'])
  writer.close()
  summary = run_summary(
      cfg, final, last_step=last_step, start=start, timed_steps=timed_steps,
      timed_seconds=timer.seconds, compile_seconds=compile_seconds, wall_start=wall_start,
      skipped=skipped,
      early_stopping={**stopper.state(), 'stopped': stop} if stopper.patience else None,
      flops_per_step=flops_per_step, devices=devices)
  return run_dir.write_summary(summary, devices)


def check_trained(final: dict, skipped: int, steps: int, skip_nonfinite: bool,
                  run: str = '') -> None:
  """With skip_nonfinite, a run whose final metrics are not finite, or that skipped most of its
  steps, did not train: it fails (NonFiniteError, exit 1) instead of reporting a result."""
  bad = [f'{split} {name}={value}' for split, values in final.items()
         for name, value in values.items()
         if isinstance(value, float) and not np.isfinite(value)]
  if bad:
    raise NonFiniteError(f"{run}the final metrics are not finite ({', '.join(bad)}); no summary "
                         "was written. Lower the learning rate or clip gradients "
                         "(optimizer.grad_clip_norm)")
  if skip_nonfinite and steps and skipped > steps / 2:
    raise NonFiniteError(
        f"{run}{skipped} of {steps} steps were skipped as non-finite (skip_nonfinite=True): the "
        "run did not train; no summary was written. Lower the learning rate or clip gradients "
        "(optimizer.grad_clip_norm)")


def run_summary(cfg: ml_collections.ConfigDict, final: dict, *, last_step: int,
                start: int, timed_steps: int, timed_seconds: float,
                compile_seconds: float | None, wall_start: float, skipped: int,
                early_stopping: dict | None, flops_per_step: float | None = None,
                devices=None) -> dict:
  """The fields of summary.json (`Workdir.write_summary` adds devices and versions); shared
  with research/vectorized.py, so that a vectorized member's summary has the same keys.
  `devices` (the run's DataParallel) gives the peak FLOP/s for `mfu`."""
  rate = timed_steps / timed_seconds if timed_steps > 0 else None
  return {
      'steps': last_step,
      'final': final,
      'train_validation_gap': {
          'accuracy': final['train']['accuracy'] - final['validation']['accuracy'],
          'loss': final['validation']['loss'] - final['train']['loss']},
      'steps_per_second': rate,
      'examples_per_second': rate * cfg.batch_size if rate is not None else None,
      'compile_seconds': compile_seconds,
      'flops_per_step': flops_per_step,
      'mfu': flops.mfu(flops_per_step, rate, flops.peak_flops(
          devices.devices, cfg.get('dtype', 'float32')) if devices is not None else None),
      'wall_seconds': time.time() - wall_start,
      'resumed_from_step': start or None,
      'skipped_nonfinite_steps': skipped if cfg.skip_nonfinite else None,
      'early_stopping': early_stopping,
  }

"""Training: the pure steps, and `train_and_evaluate(config, workdir)`, the loop around them.

The loop reads a batch, runs the compiled `train_step`, logs train metrics every `log_every`
steps, evaluates the whole validation split every `eval_every` steps, checkpoints every
`checkpoint_every` steps, and at the end evaluates train (in eval mode), validation and test into
`summary.json`. Re-running on the same workdir resumes from the newest checkpoint; because the
data iterator's position and the RNG key are in the checkpoint, the resumed run is the same run.
"""
import functools
import logging
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from research import checkpoint, data, experiment, metrics, workdir as workdir_lib

log = logging.getLogger('research')


def dropout_rng(base: jax.Array, step: jax.Array, axis_name: str | None = None) -> jax.Array:
  """The dropout key of one step: `base` folded with the step, and with the device index under
  pmap (each device then draws its own masks; under a mesh the batch is one global array)."""
  rng = jax.random.fold_in(base, step)
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  return rng


def train_step(state: experiment.TrainState, batch: dict, *, loss_fn: Callable,
               axis_name: str | None = None) -> tuple[experiment.TrainState, dict]:
  """One gradient step on `batch` ({'input', 'label'}); returns the new state and metric sums.

  Pure: the dropout key comes from `state.rng` and the step (`dropout_rng`). With `axis_name`
  set (pmap), gradients are averaged and metric sums added across devices; under a mesh the batch
  is one global array and XLA inserts the reduction.
  """
  rng = dropout_rng(state.rng, state.step, axis_name)

  def objective(params):
    logits = state.apply_fn({'params': params}, batch['input'], train=True,
                            rngs={'dropout': rng})
    per_example = loss_fn(logits, batch['label'])
    return per_example.mean(), (per_example, logits)

  grads, (per_example, logits) = jax.grad(objective, has_aux=True)(state.params)
  if axis_name is not None:
    grads = jax.lax.pmean(grads, axis_name)
  sums = {'loss': per_example.sum(),
          'correct': (logits.argmax(-1) == batch['label']).sum().astype(jnp.float32),
          'count': jnp.float32(per_example.shape[0])}
  if axis_name is not None:
    sums = jax.lax.psum(sums, axis_name)
  return state.apply_gradients(grads=grads), sums


def eval_step(state: experiment.TrainState, batch: dict, *, loss_fn: Callable,
              axis_name: str | None = None) -> dict:
  """Metric sums over the real examples of `batch` (those with `mask` True)."""
  logits = state.apply_fn({'params': state.params}, batch['input'], train=False)
  mask = batch['mask'].astype(jnp.float32)
  sums = {'loss': (loss_fn(logits, batch['label']) * mask).sum(),
          'correct': ((logits.argmax(-1) == batch['label']) * mask).sum(),
          'count': mask.sum()}
  if axis_name is not None:
    sums = jax.lax.psum(sums, axis_name)
  return sums


class Steps:
  """The compiled steps of one experiment, and whole-split evaluation with them."""

  def __init__(self, exp: experiment.Experiment):
    self.exp = exp
    kwargs = dict(loss_fn=exp.loss_fn, axis_name=exp.devices.axis_name)
    self.train = exp.devices.compile(functools.partial(train_step, **kwargs))
    self.eval = exp.devices.compile(functools.partial(eval_step, **kwargs), donate_state=False)

  def evaluate(self, state: experiment.TrainState, split: str) -> dict:
    """Loss and accuracy over every example of `split`, each counted once."""
    cfg, devices = self.exp.config, self.exp.devices
    batch_size = (cfg.get('eval_batch_size') or cfg.batch_size) // jax.process_count()
    sums = None
    for batch in data.eval_batches(cfg.dataset, split, batch_size,
                                   jax.process_index(), jax.process_count()):
      batch_sums = self.eval(state, devices.shard_batch(batch))
      if devices.needs_step_sync:
        jax.block_until_ready(batch_sums)
      sums = metrics.add_sums(sums, batch_sums)
    return metrics.means(devices.metrics_to_host(sums))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config` in `workdir` (resuming if it holds checkpoints); returns the summary."""
  exp = experiment.build(config)  # First: a bad config must not leave an empty workdir behind.
  cfg = exp.config
  exp.devices.check_batch(cfg.get('eval_batch_size') or cfg.batch_size, 'config.eval_batch_size')
  run_dir = workdir_lib.Workdir(workdir)
  ckpt = checkpoint.Checkpointer(run_dir.path, keep=cfg.get('keep_checkpoints', 3))
  start = ckpt.latest_step()
  if start is not None:
    run_dir.check_resumable(cfg)
  run_dir.write_config(cfg)
  writer = run_dir.metric_writer()

  state = exp.init_state()
  train_iter = data.train_iterator(cfg.dataset, exp.process_batch_size, cfg.seed,
                                   jax.process_index(), jax.process_count())
  if start is not None:
    state = experiment.state_from_saved(
        state, ckpt.restore(start, experiment.state_to_save(state), train_iter))
    dropped = writer.truncate_after(start)
    log.info('resumed from step %d (%d metric rows after it dropped)', start, dropped)
    if start >= cfg.total_steps and run_dir.summary() is not None:
      log.info('%s already finished at step %d; nothing to do', run_dir.path, start)
      return run_dir.summary()
  start = start or 0

  steps = Steps(exp)
  devices = exp.devices
  state = devices.replicate(state)
  timer, window, compile_seconds, last_validation = metrics.Stopwatch(), [], None, None
  wall_start = time.time()
  for step in range(start + 1, cfg.total_steps + 1):
    batch = devices.shard_batch(next(train_iter))
    first = compile_seconds is None
    tic = time.perf_counter()
    state, sums = steps.train(state, batch)
    window.append(sums)
    if first or devices.needs_step_sync:
      jax.block_until_ready(sums)
    if first:
      compile_seconds = time.perf_counter() - tic  # Compilation plus one step: not throughput.
      timer.start()

    do_eval = step % cfg.eval_every == 0 or step == cfg.total_steps
    do_save = step % cfg.checkpoint_every == 0 or step == cfg.total_steps
    if do_eval or do_save or step % cfg.get('log_every', 100) == 0:
      jax.block_until_ready(state)
      timer.stop()
      # The window also closes at every checkpoint, so a resumed run logs the same rows.
      writer.write(step, 'train', metrics.reduce_window(devices.metrics_to_host(window)))
      window = []
      if do_eval:
        last_validation = steps.evaluate(state, 'validation')
        writer.write(step, 'validation', last_validation)
      if do_save:
        ckpt.save(step, devices.to_host(experiment.state_to_save(state)), train_iter)
      timer.start()
  timer.stop()
  ckpt.wait()

  timed_steps = cfg.total_steps - start - 1  # The first step of a process includes compilation.
  final = {'train': steps.evaluate(state, 'train'),
           'validation': last_validation or steps.evaluate(state, 'validation'),
           'test': steps.evaluate(state, 'test')}
  writer.write(cfg.total_steps, 'test', final['test'])
  writer.close()
  ckpt.close()
  summary = {
      'steps': cfg.total_steps,
      'final': final,
      'train_validation_gap': {
          'accuracy': final['train']['accuracy'] - final['validation']['accuracy'],
          'loss': final['validation']['loss'] - final['train']['loss']},
      'steps_per_second': timed_steps / timer.seconds if timed_steps > 0 else None,
      'examples_per_second': (timed_steps * cfg.batch_size / timer.seconds
                              if timed_steps > 0 else None),
      'compile_seconds': compile_seconds,
      'wall_seconds': time.time() - wall_start,
      'resumed_from_step': start or None,
  }
  return run_dir.write_summary(summary, devices)

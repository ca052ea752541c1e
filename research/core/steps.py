"""The pure steps of supervised training: one gradient step, k steps in one dispatch, and the
metric sums of an evaluation batch. No files, no host state: the loop (research/run/loop.py) and the
programs it drives (research/run/single_run.py, research/run/vectorized.py) compile and call these.
"""
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from research.core import augment, microbatch, tasks, train_state


def dropout_rng(base: jax.Array, step: jax.Array, axis_name: str | None = None) -> jax.Array:
  """The dropout key of one step: `base` folded with the step, and with the device index under
  pmap (each device then draws its own masks; under a mesh the batch is one global array)."""
  rng = jax.random.fold_in(base, step)
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  return rng


def _apply(state: train_state.TrainState, params, inputs, *, train: bool, rng=None):
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


def train_step(state: train_state.TrainState, batch: dict, *, task: tasks.Task,
               loss_fn: Callable, axis_name: str | None = None, grad_accum_steps: int = 1,
               skip_nonfinite: bool = False) -> tuple[train_state.TrainState, dict]:
  """One gradient step on `batch`; returns the new state and metric (sum, count) pairs.

  Pure: the dropout (and token-masking) key comes from `state.rng` and the step
  (`dropout_rng`). With `axis_name` set (pmap), gradients are averaged and metric sums added
  across devices, and BatchNorm averages its statistics over the same axis; under a mesh the
  batch is one global array and XLA inserts the reductions. With `grad_accum_steps` > 1 the
  gradient is accumulated over that many micro-batches (research/core/microbatch.py).

  `state.augment` (core/augment.py), when set, transforms the batch first with a key folded from
  the step's key: the same (seed, step, batch) always gives the same augmented batch. After the
  update, `state.ema_params` moves toward the new parameters (`TrainState.with_ema_update`).
  """
  step_key = dropout_rng(state.rng, state.step, axis_name)
  if state.augment is not None:
    batch = state.augment(batch, jax.random.fold_in(step_key, augment.STREAM))
  dropout_key, task_key = jax.random.split(step_key)
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


def _update(state: train_state.TrainState, grads, sums: dict, batch_stats,
            skip_nonfinite: bool = False) -> tuple[train_state.TrainState, dict]:
  """Applies the (averaged) gradients; adds the gradient norm to the metric sums.

  With `skip_nonfinite`, finite gradients can still overflow a parameter (a huge learning rate):
  such an update is dropped (parameters, optimizer state and BatchNorm statistics stay as they
  were; the step counter advances) and the step's gradient norm is reported as NaN, which the
  loop counts as a skipped step, as it does non-finite gradients."""
  # The norm of the (averaged) gradient; a (value, 1) pair so windows average it per step.
  norm = optax.tree.norm(grads)
  new = state.apply_gradients(grads=grads).with_ema_update()
  if batch_stats is not None:
    new = new.replace(batch_stats=batch_stats)
  if skip_nonfinite:
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in
                                jax.tree.leaves((new.params, new.batch_stats))]))
    kept = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, state)
    new, norm = kept.replace(step=new.step), jnp.where(finite, norm, jnp.nan)
  sums['grad_norm'] = (norm, jnp.float32(1.0))
  return new, sums


def _summed_loss_gradients(state: train_state.TrainState, params, batch_stats, batch: dict,
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


def train_steps(state: train_state.TrainState, batches: dict, **step_kwargs
                ) -> tuple[train_state.TrainState, dict]:
  """`train_step` over a stack of k batches ([k, batch, ...]) with `lax.scan`: k steps in one
  dispatch (`config.steps_per_dispatch`); the metric sums come back stacked, one row per step."""
  return jax.lax.scan(lambda s, b: train_step(s, b, **step_kwargs), state, batches)


def eval_step(state: train_state.TrainState, batch: dict, *, task: tasks.Task,
              loss_fn: Callable, axis_name: str | None = None) -> dict:
  """Metric (sum, count) pairs over the real examples of `batch` (`mask` True).

  Masked-token prediction hides the same positions on every evaluation (a fixed key). Never
  augmented; with `state.eval_ema` the averaged parameters are evaluated."""
  inputs, targets = task.prepare(batch, jax.random.PRNGKey(0))
  logits, _ = _apply(state, state.eval_params, inputs, train=False)
  _, sums = task.loss_and_sums(loss_fn, logits, targets)
  if axis_name is not None:
    sums = jax.lax.psum(sums, axis_name)
  return sums

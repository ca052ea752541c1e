"""One run as a program of the loop (research/run/loop.py): an experiment's compiled steps on its
devices, its data (a grain iterator, or splits resident on the device: research/data/resident.py),
whole-split evaluation and exact-match decoding.

`Steps` is also what `research eval` and the Python API evaluate with.
"""
import functools

import jax
import numpy as np

from research import data, models
from research.core import generate, metric_sums, steps, train_state
from research.data import pipeline, resident
from research.run import dispatch, flops, parts
from research.rundir import checkpoint


class Steps:
  """The compiled steps of one experiment, and whole-split evaluation with them."""

  def __init__(self, exp: parts.Parts):
    self.exp = exp
    kwargs = dict(task=exp.task, loss_fn=exp.loss_fn, axis_name=exp.devices.axis_name)
    train_kwargs = dict(grad_accum_steps=exp.config.grad_accum_steps,
                        skip_nonfinite=exp.config.skip_nonfinite)
    self.per_dispatch = exp.config.steps_per_dispatch
    step = steps.train_steps if self.per_dispatch > 1 else steps.train_step
    self.train = exp.devices.compile(functools.partial(step, **kwargs, **train_kwargs))
    self.one_step = functools.partial(steps.train_step, **kwargs, **train_kwargs)
    self.eval = exp.devices.compile(functools.partial(steps.eval_step, **kwargs),
                                    donate_state=False)
    self._resident = {}  # split -> its examples on the devices, when the data is resident.
    self.is_resident = resident.use_device(exp.config.dataset, exp.info, exp.devices,
                                           jax.process_count(), models.loops_well(exp.config.model))
    if self.is_resident:
      self._eval_resident = exp.devices.compile(
          dispatch.resident_eval(functools.partial(steps.eval_step, **kwargs),
                                 exp.devices.constrain_batch), donate_state=False)
    new_tokens = exp.info.input_shape[0] - 1  # Compiled once, used for every split.
    self._answers = jax.jit(lambda params, tokens, lengths, steps: generate.answer_exact_match(
        generate.generate(exp.model, params, tokens, lengths, new_tokens, steps=steps),
        tokens, lengths))

  def resident_split(self, split: str) -> dict:
    """`split`'s examples on the devices (placed on first use, kept for the run)."""
    if split not in self._resident:
      self._resident[split] = self.exp.devices.replicate(pipeline.split_arrays(self.exp.data,
                                                                               split))
    return self._resident[split]

  def resident_train(self, examples: dict) -> dict:
    """Places the train split's examples (single process: in the source's order, so they also
    serve the final evaluation of the train split)."""
    self._resident['train'] = self.exp.devices.replicate(examples)
    return self._resident['train']

  def flops_per_step(self, state: train_state.TrainState, host_batch: dict,
                     stacked: bool | None = None) -> float | None:
    """XLA's count of the FLOPs of one training step on the global batch (research/run/flops.py);
    `host_batch` is a stack of batches when `stacked` (default: with steps_per_dispatch > 1)."""
    return flops.train_step_flops(self.one_step, state, host_batch,
                                  axis_name=self.exp.devices.axis_name,
                                  stacked=self.per_dispatch > 1 if stacked is None else stacked)

  def _eval_batches(self, split: str):
    return data.eval_batches(self.exp.data, split,
                             self.exp.eval_batch_size // jax.process_count(),
                             jax.process_index(), jax.process_count())

  def evaluate(self, state: train_state.TrainState, split: str) -> dict:
    """Loss and accuracy over every example of `split`, each counted once."""
    devices, sums = self.exp.devices, None
    if self.is_resident:
      positions, mask = resident.eval_positions(self.exp.info.split_sizes[split],
                                                self.exp.eval_batch_size)
      sums = self._eval_resident(state, self.resident_split(split), positions, mask)
      return self.exp.task.summarize(devices.metrics_to_host(sums))
    for batch in self._eval_batches(split):
      batch_sums = self.eval(state, devices.shard_batch(batch))
      if devices.needs_step_sync:
        jax.block_until_ready(batch_sums)
      sums = metric_sums.add_sums(sums, batch_sums)
    return self.exp.task.summarize(devices.metrics_to_host(sums))

  def exact_match(self, state: train_state.TrainState, split: str) -> float | None:
    """Share of `split`'s prompts whose greedy generated answer is exactly right.

    Only for next-token prediction on a dataset with prompts (e.g. `addition`); None otherwise.
    Runs on one device with the host's copy of the parameters: generation is evaluation-only.
    """
    if self.exp.task.name != 'language_model':
      return None
    params = jax.device_put(self.exp.devices.to_host(state.params), jax.local_devices()[0])
    right = total = 0
    for batch in self._eval_batches(split):
      lengths = batch.get('prompt_length')
      if lengths is None or not lengths[batch['mask']].all():
        return None  # No prompts: nothing to answer.
      lengths = np.maximum(lengths, 1)
      steps = generate.steps_to_compare(batch['input'], lengths)  # Only what is compared.
      matches = np.asarray(self._answers(params, batch['input'], lengths, np.int32(steps)))
      right += int(matches[batch['mask']].sum())
      total += int(batch['mask'].sum())
    return right / total if total else None


# The most steps one dispatch runs on resident data (the loop's signal checks come between them).
MAX_STEPS_PER_DISPATCH = 1000


class SingleRun:
  """The loop's program for one run (`members` = 1): `research train`."""

  members = 1
  final_splits = ('train', 'validation', 'test')

  def __init__(self, exp: parts.Parts):
    self.exp, self.config, self.task, self.devices = exp, exp.config, exp.task, exp.devices
    self.steps = Steps(exp)
    self.steps_per_dispatch = self.steps.per_dispatch
    self._first_batch = None
    if self.steps.is_resident:
      self._start_resident()
    else:
      self._iterator = data.train_iterator(exp.data, exp.process_batch_size,
                                           exp.config.seed, jax.process_index(),
                                           jax.process_count())

  def _start_resident(self) -> None:
    """The train split on the devices, its order, and the program that runs up to
    `max_steps_per_dispatch` steps on batches gathered there (research/data/resident.py)."""
    cfg, devices = self.config, self.devices
    examples, self._order = pipeline.train_order(self.exp.data, cfg.batch_size, cfg.seed)
    self._first_batch = {k: v[self._order.positions(0)] for k, v in examples.items()}
    self._examples = self.steps.resident_train(examples)
    # The loop dispatches up to its next log / eval / checkpoint step (research/run/loop.py).
    self.max_steps_per_dispatch = min(MAX_STEPS_PER_DISPATCH, cfg.total_steps, cfg.log_every,
                                      cfg.eval_every, cfg.checkpoint_every)
    self.max_steps_per_dispatch = max(self.max_steps_per_dispatch, self.steps_per_dispatch)
    self._iterator = resident.Position()
    self._run = devices.compile(dispatch.resident_steps(
        self.steps.one_step, self.max_steps_per_dispatch, devices.constrain_batch))

  def init_state(self) -> train_state.TrainState:
    return self.exp.init_state()

  def restore(self, ckpt: checkpoint.Checkpointer, state: train_state.TrainState
              ) -> tuple[int, train_state.TrainState]:
    step, saved = ckpt.restore_newest_good(
        train_state.state_to_save(self.devices.restore_target(state)), self._iterator)
    return step, train_state.state_from_saved(state, saved)

  def place(self, state: train_state.TrainState) -> train_state.TrainState:
    return self.devices.place_state(state)

  def train(self, state: train_state.TrainState, active: np.ndarray, count: int | None = None):
    """One dispatch (`steps_per_dispatch` steps, or `count` on resident data); `active` is all
    True: a single run that stops early ends the loop."""
    del active
    if self.steps.is_resident:
      first = self._iterator.step
      positions = np.zeros((self.max_steps_per_dispatch, self.config.batch_size), np.int32)
      for i in range(count):
        positions[i] = self._order.positions(first + i)
      self._iterator.step = first + count
      self._dispatch_args = (self.devices.replicate(positions), np.int32(count))
      state, stacked = self._run(state, self._examples, *self._dispatch_args)
      return state, (stacked, count)
    host_batch = dispatch.next_batches(self._iterator, self.steps_per_dispatch)
    if self._first_batch is None:
      self._first_batch = host_batch
    batch = self.devices.shard_batch(host_batch, stacked=self.steps_per_dispatch > 1)
    return self.steps.train(state, batch)

  def flops_per_step(self, state: train_state.TrainState) -> float | None:
    """On resident data, XLA's count for the dispatched program, whose loop of steps it counts
    once: one step's FLOPs, from the program already lowered (a fresh lowering of the step for
    the count took 0.2-0.7 s of every run)."""
    if self.steps.is_resident:  # One process: resident.use_device says so.
      lowered = self._run.lower(state, self._examples, *self._dispatch_args)
      return flops.lowered_flops(lowered)
    return self.steps.flops_per_step(state, self._first_batch)

  def window_to_host(self, window: list) -> list:
    if self.steps.is_resident:  # (stacked sums, steps) per dispatch: one entry per step.
      host = jax.device_get(self.devices.metrics_to_host([sums for sums, _ in window]))
      return [row for sums, (_, count) in zip(host, window) for row in dispatch.rows(sums, count)]
    return jax.device_get(self.devices.metrics_to_host(window))

  def member_sums(self, host_sums: dict, k: int) -> dict:
    del k
    return host_sums

  def evaluate(self, state: train_state.TrainState, split: str) -> list[dict]:
    return [self.steps.evaluate(state, split)]

  def exact_match(self, state: train_state.TrainState, split: str) -> list[float | None]:
    return [self.steps.exact_match(state, split)]

  def save(self, ckpt: checkpoint.Checkpointer, step: int, state: train_state.TrainState) -> None:
    ckpt.save(step, self.devices.for_checkpoint(train_state.state_to_save(state)), self._iterator)

  def finish(self, state: train_state.TrainState, steps_per_member: list[int]) -> None:
    """Nothing more to write: the run's last checkpoint is its own."""

  def summary_extras(self, summary: dict) -> dict:
    del summary
    return {'param_counts': self.exp.param_counts()}

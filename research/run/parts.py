"""From a config to the parts of a run: data, model, loss, optimizer, devices, state.

`train`, `eval` and `load` all start here, so a checkpoint is always read back into exactly the
structure that wrote it.

`config.validate` checks the shared settings and imports no registry. The registries (models,
optimizers, losses, tasks, sharding rules) check their own fields, each in one place, and they
do it while they build (`build`), so a run consults each registry once. `check` runs those same
checks on a config without preparing data or computing anything with JAX (what a sweep does for
every expanded run before any starts): the model fields are checked without the dataset's
shapes (those are checked when the model is built), the optimizer's without a step count.
"""
import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import linen as nn

from research import config as config_lib, data, models
from research.core import augment, losses, optim, tasks
from research.core.train_state import TrainState
from research.devices import placement, sharding
from research.errors import UserError
from research.run import transfer as transfer_lib

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class Parts:
  config: ml_collections.ConfigDict  # Resolved: total_steps, data_dir, intervals filled in.
  data: data.Dataset  # The handle that every iterator and evaluator of the run reads.
  model: nn.Module
  task: tasks.Task
  loss_fn: Callable
  optimizer: optax.GradientTransformation
  devices: placement.Placement
  augment: Callable | None = None  # The training batch's augmentation (core/augment.py).
  source: transfer_lib.Source | None = None  # config.init_from's arrays (run/transfer.py).

  @property
  def input_shape(self) -> tuple:
    """One example's shape as the model sees it (after `config.input_resize`)."""
    return tasks.resized_shape(self.info.input_shape, self.config.input_resize)

  def param_shapes(self):
    """The parameter tree's shapes and dtypes, computed without initializing anything."""
    return jax.eval_shape(lambda: self.init_state(jax.random.PRNGKey(0)).params)

  def param_counts(self) -> dict[str, int]:
    """Parameters per top-level module ('Dense_0': 8320, ...) and their 'total'."""
    counts: dict[str, int] = {}
    for path, leaf in optim.flat_paths(self.param_shapes()):
      module = path.split('/')[0]
      counts[module] = counts.get(module, 0) + math.prod(leaf.shape)
    return {**counts, 'total': sum(counts.values())}

  @property
  def info(self) -> data.DatasetInfo:
    return self.data.info

  @property
  def process_batch_size(self) -> int:
    return self.config.batch_size // jax.process_count()

  @property
  def eval_batch_size(self) -> int:
    """The global evaluation batch: `eval_batch_size`, or the training batch when unset."""
    return self.config.eval_batch_size or self.config.batch_size

  def init_state(self, key: jax.Array | None = None) -> TrainState:
    """Fresh parameters and optimizer state, on the host's default device (not yet replicated).

    `key` defaults to `PRNGKey(config.seed)`; passing keys lets `jax.vmap` initialize several
    seeds at once (research/run/vectorized.py)."""
    key = jax.random.PRNGKey(self.config.seed) if key is None else key
    shape = (1,) + self.input_shape
    if self.task.name == 'language_model':  # The model reads all tokens but the last.
      shape = shape[:1] + (shape[1] - 1,) + shape[2:]
    dummy = jax.ShapeDtypeStruct(shape, self.info.input_dtype)

    def create(key):
      init_key, dropout_key = jax.random.split(key)
      variables = self.model.init(init_key, jnp.zeros(dummy.shape, dummy.dtype), train=False)
      params, stats = variables['params'], variables.get('batch_stats')
      if self.source is not None:  # Transfer: matching paths from the source run.
        params, stats = self.source.merge(params, stats, self.config.init_batch_stats)
      ema = self.config.ema
      return TrainState.create(apply_fn=self.model.apply, params=params,
                               tx=self.optimizer, rng=dropout_key, batch_stats=stats,
                               ema_params=params if ema.decay > 0 else None,
                               augment=self.augment, ema_decay=float(ema.decay),
                               eval_ema=bool(ema.evaluate) and ema.decay > 0)

    # One compiled program: run eagerly, the optimizer's init compiles one small program per
    # parameter shape (15 compilations, ~5 s of a WaveNet run's start-up on 2 cores).
    return jax.jit(create)(key)


def build(config: ml_collections.ConfigDict, dataset: data.Dataset | None = None, *,
          transfer: bool = True) -> Parts:
  """Validates `config`, prepares its dataset, and builds everything a run needs.

  `dataset`: the handle of `config.dataset` when there is one already, e.g. a finished run's
  recorded one (`data.recorded`), which builds the model without opening the data.
  `transfer`: read `config.init_from`'s checkpoint (training; loading a finished run does not).

  Raises `UserError` for anything wrong with the config, the data or the device layout.
  """
  config_lib.validate(config)
  devices = placement.create(config.parallel, config.num_devices, config.mesh,
                            sharding.rules_from_config(config))
  devices.check_batch(config.batch_size)
  accum = config.grad_accum_steps
  if accum > 1:
    devices.check_batch(config.batch_size // accum, 'a micro-batch (batch_size / grad_accum_steps)')
  tasks.create(config)  # The task's and the loss's fields, checked before the data is opened.
  losses.get(config.loss, config.label_smoothing, config.task)
  dataset = data.open(config.dataset) if dataset is None else dataset
  info = dataset.info
  task = tasks.create(config, info.target_scale, info.alphabet)
  if config.batch_size > info.split_sizes['train']:
    raise UserError(f"config.batch_size={config.batch_size} is larger than the training split of "
                    f"{info.name!r} ({info.split_sizes['train']} examples); use at most that")
  resolved = config_lib.resolve(config, data.steps_per_epoch(info, config.batch_size))
  input_shape = tasks.resized_shape(info.input_shape, resolved.input_resize)
  ctx = models.Context(num_outputs=_num_outputs(task, info), input_shape=input_shape,
                       dtype=DTYPES[resolved.dtype],
                       axis_name=devices.axis_name, sample_rate=info.sample_rate)
  _check_ema(resolved.ema)
  exp = Parts(
      config=resolved, data=dataset, model=models.build(resolved.model, ctx), task=task,
      loss_fn=losses.get(resolved.loss, resolved.label_smoothing, task.name),
      optimizer=optim.create(resolved.optimizer, resolved.total_steps,
                             resolved.skip_nonfinite),
      devices=devices,
      augment=augment.build(resolved.augment, info.input_shape, info.input_dtype,
                            info.num_classes, task.name))
  return _with_source(exp, transfer)


def _check_ema(ema: ml_collections.ConfigDict) -> None:
  if isinstance(ema.decay, bool) or not 0.0 <= ema.decay < 1.0:
    raise UserError(f"config.ema.decay must be in [0, 1) (0: no average), got {ema.decay!r}")


def _with_source(exp: Parts, transfer: bool) -> Parts:
  """`exp` with config.init_from's arrays (logging the mapping); UserError for a freeze or
  group_lr pattern that matches no parameter."""
  cfg = exp.config
  if not (cfg.optimizer.freeze or cfg.optimizer.group_lr or (cfg.init_from and transfer)):
    return exp
  shapes = exp.param_shapes()
  unused = optim.path_labels(shapes, optim.validate(cfg.optimizer))[1]
  if unused:
    paths = [p for p, _ in optim.flat_paths(shapes)]
    raise UserError(f"config.optimizer freeze/group_lr pattern {unused[0]!r} matches no "
                    f"parameter; the paths are: {', '.join(paths)}")
  if not (cfg.init_from and transfer):
    return exp
  source = transfer_lib.load(cfg.init_from, cfg.model.name)
  transfer_lib.log_mapping(source, shapes)
  return dataclasses.replace(exp, source=source)


def _num_outputs(task: tasks.Task, info: data.DatasetInfo) -> int:
  """Classes for classification; the vocabulary for next- and masked-token prediction; the
  number of target values for regression (the model's outputs are reshaped to the target);
  the alphabet and the CTC blank for ctc."""
  if (task.name == 'ctc') != bool(info.alphabet):
    raise UserError(f"config.task={task.name!r} and dataset {info.name!r} do not match: the ctc "
                    "task needs a speech dataset (a waveform and a transcript: speech, "
                    "librispeech), and a speech dataset needs task='ctc'")
  if task.name == 'ctc':
    return 1 + len(info.alphabet)
  if task.name == 'regression':
    if info.target_shape is None:
      kind = (f'{info.num_classes}-class labels' if info.num_classes else
              f'{info.input_dtype} inputs and no target')
      raise UserError(f"config.task='regression' needs a dataset with a real-valued target; "
                      f"{info.name!r} has {kind}; regression datasets: diabetes, sunspots, "
                      "stocks/<ticker>, or any whose encoding names a target feature")
    return max(1, math.prod(info.target_shape))
  if info.target_shape is not None and not info.num_classes:
    raise UserError(f"config.task={task.name!r} needs labels or tokens; {info.name!r} has a "
                    "real-valued target: use task='regression' (losses mse, mae, huber)")
  if task.is_token_task:
    if not info.vocab_size:
      raise UserError(f"config.task={task.name!r} needs a token dataset; {info.name!r} has "
                      f"{info.input_dtype} inputs of shape {tuple(info.input_shape)}")
    return info.vocab_size
  if not info.num_classes:
    raise UserError(f"config.task='classification' needs labels; {info.name!r} has none "
                    "(use task='language_model' or 'masked_lm')")
  return info.num_classes


def check(config: ml_collections.ConfigDict) -> None:
  """Raises UserError for anything in `config` that a run would refuse before its data is read."""
  config_lib.validate(config)
  full = ml_collections.ConfigDict(config_lib.with_defaults(config.to_dict()))
  losses.get(full.loss, full.label_smoothing, full.task)
  tasks.create(full)
  models.validate(full.model)
  optim.validate(full.optimizer)
  _check_ema(full.ema)
  sharding.rules_from_config(full)

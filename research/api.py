"""Using a workdir after training: load its model, predict, or evaluate it on a split.

    import research
    run = research.load_run('workdirs/default')    # config, model, params, step
    inputs, labels = run.batch('test', size=8)     # as the model sees them (scaled, like training)
    logits = run.predict(inputs)  # run.model.apply(run.variables, inputs, train=False)

Loading a run reads no data: the model is rebuilt from what its workdir recorded of the dataset
(dataset.json), and the data is opened only for `batch` and evaluation (a workdir written before
runs recorded it opens the data to learn its shapes).

Reading a workdir never changes it: checkpoints are opened read-only (a training may be running
in it), a damaged newest step is skipped with a warning (not moved, as `train` does), and a
step that a running training deletes while it is read is skipped the same way.
"""
import dataclasses
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import linen as nn

from research import config as config_lib, data
from research.core import generate, tasks, tokens as tokens_lib, train_state
from research.devices import placement
from research.errors import UserError
from research.run import parts, single_run
from research.rundir import checkpoint, layout


class Batch(NamedTuple):
  """Examples of a split as the model sees them in evaluation (see `LoadedRun.batch`)."""
  inputs: np.ndarray
  labels: np.ndarray


@dataclasses.dataclass(frozen=True)
class LoadedRun:
  """A workdir's model at one checkpoint.

  Attributes:
    config: the run's resolved config.
    model: the Flax module; `model.apply(run.variables, inputs, train=False)` gives logits.
    params: the parameters evaluation uses (the moving average with `config.ema`).
    step: the checkpoint's step.
    state: the whole restored train state (optimizer state, RNG key, BatchNorm statistics).
    dataset: the run's dataset handle, opened by `batch` when first needed.
  """
  config: ml_collections.ConfigDict
  model: nn.Module
  params: dict
  step: int
  state: train_state.TrainState
  dataset: data.Dataset | None = dataclasses.field(default=None, repr=False, compare=False)

  @property
  def variables(self) -> dict:
    """What `model.apply` takes: {'params': ...}, and 'batch_stats' for BatchNorm models
    (ResNet, VGG), whose evaluation uses the statistics gathered in training."""
    variables = {'params': self.params}
    if self.state.batch_stats is not None:
      variables['batch_stats'] = self.state.batch_stats
    return variables

  def predict(self, inputs) -> np.ndarray:
    """The model's logits for `inputs` (as `batch` returns them), in evaluation mode: no
    dropout, BatchNorm with its stored statistics. Classification: [n, classes]; token
    tasks: [n, length, vocabulary]; regression: predictions in the target's own units (the
    training split's standardization undone), [n, *target_shape]."""
    outputs = np.asarray(self.model.apply(self.variables, jnp.asarray(inputs), train=False))
    if self.config.task != 'regression':
      return outputs
    info = self.dataset.info
    mean, std = info.target_scale
    return (outputs * std + mean).reshape((len(outputs), *info.target_shape))

  def batch(self, split: str = 'test', size: int = 8) -> Batch:
    """The first `size` examples of `split` ('train', 'validation' or 'test', in the dataset's
    order; fewer if the split is smaller), exactly as evaluation feeds them to the model.

    `inputs`: float32 [n, ...] for images and signals, scaled as in training (pixels divided by
    255, or by 16 for `digits`' 0..16 counts; see research/data/encoding.py), or int32 tokens.
    `labels`: int32 class ids [n]; for token tasks the target tokens (next-token prediction:
    inputs are the tokens but the last, labels the tokens but the first; masked-token
    prediction: inputs with the positions that evaluation hides masked, labels all tokens);
    for regression the real-valued targets in their own units [n, *target_shape].
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
      raise UserError(f"size must be a positive integer, got {size!r}")
    batches = data.eval_batches(self.dataset or self.config.dataset, split, size)
    try:
      first = next(batches)
    finally:
      batches.close()
    count = int(first['mask'].sum())
    inputs, targets = tasks.create(self.config).prepare(first, jax.random.PRNGKey(0))
    labels = first['target'] if self.config.task == 'regression' else targets['labels']
    return Batch(inputs=np.asarray(inputs)[:count], labels=np.asarray(labels)[:count])


def _open(workdir: str, step: int | None) -> tuple[parts.Parts, train_state.TrainState]:
  path = pathlib.Path(workdir)
  if not layout.is_run(path):
    raise UserError(f"{str(path)!r} is not a research workdir (no {layout.CONFIG})")
  config = placement.fit_to_host(layout.read_config(path / layout.CONFIG))
  if config_lib.is_agent(config):
    raise UserError(f"{str(path)!r} holds an agent (env.name={config.env.name!r}); `research "
                    "eval` evaluates it, load_run and generate read supervised runs")
  record = layout.dataset(path)
  dataset = None if record is None else data.recorded(config.dataset, record,
                                                      str(path / layout.DATASET))
  exp = parts.build(config, dataset, transfer=False)  # Its own checkpoint, not init_from's.
  # Read-only: a training running in this workdir may be saving and deleting steps meanwhile.
  ckpt = checkpoint.Checkpointer(path, read_only=True)
  try:
    kept = ckpt.all_steps()
    if not kept:
      raise UserError(f"workdir {str(path)!r} has no checkpoint to restore")
    initial = exp.init_state()
    template = train_state.state_to_save(initial)
    if step is None:
      step, saved = ckpt.restore_newest_good(template)
    elif step not in kept:
      raise UserError(f"step {step} is not kept in {str(path)!r}; kept steps: "
                      f"{', '.join(map(str, kept))}")
    else:
      saved = ckpt.restore(step, template)
  finally:
    ckpt.close()
  return exp, train_state.state_from_saved(initial, saved)


def load_run(workdir: str, step: int | None = None) -> LoadedRun:
  """The model and parameters of `workdir`'s newest restorable checkpoint (or of `step`)."""
  exp, state = _open(workdir, step)
  return LoadedRun(config=exp.config, model=exp.model, params=state.eval_params,
                   step=int(state.step), state=state, dataset=exp.data)


def evaluate_workdir(workdir: str, split: str = 'test', step: int | None = None) -> dict:
  """Restores `workdir` and returns {'step', 'split', 'loss', 'accuracy', 'count'} on `split`
  (an agent's: {'step', 'split', 'return', 'return_std', ...} of its greedy policy)."""
  stored = layout.config(pathlib.Path(workdir))
  if stored is not None and config_lib.is_agent(stored):
    from research.run import agent  # pylint: disable=g-import-not-at-top
    return agent.evaluate_workdir(workdir, config_lib.from_stored(stored), split, step)
  exp, state = _open(workdir, step)
  if split not in exp.info.splits:
    raise UserError(f"unknown split {split!r}; allowed: {', '.join(exp.info.splits)}")
  steps = single_run.Steps(exp)
  return {'step': int(state.step), 'split': split,
          **steps.evaluate(exp.devices.place_state(state), split)}


def generate_text(workdir: str, prompts: list[str], *, max_new_tokens: int | None = None,
                  temperature: float = 0.0, top_k: int | None = None, seed: int = 0) -> list[str]:
  """Continues each prompt with the language model of `workdir` (greedy at temperature 0)."""
  run = load_run(workdir)
  if run.config.get('task') != 'language_model':
    raise UserError(f"workdir {workdir!r} holds a {run.config.get('task')!r} model; generate "
                    "needs one trained with task='language_model'")
  length = int(run.model.max_len)
  encoded = [tokens_lib.encode(p) for p in prompts]
  if any(len(e) == 0 or len(e) >= length for e in encoded):
    raise UserError(f"prompts must be 1..{length - 1} bytes long for this model")
  if top_k is not None and not 1 <= top_k <= tokens_lib.VOCAB_SIZE:
    raise UserError(f"--top-k must be in 1..{tokens_lib.VOCAB_SIZE}, got {top_k}")
  if temperature < 0:
    raise UserError(f"--temperature must be >= 0, got {temperature}")
  buffer = np.stack([tokens_lib.encode(p, length) for p in prompts])
  lengths = np.array([len(e) for e in encoded], np.int32)
  new = max_new_tokens if max_new_tokens is not None else length - int(lengths.min())
  rng = jax.random.PRNGKey(seed) if temperature > 0 else None
  out = generate.generate(run.model, run.params, buffer, lengths, new, rng=rng,
                          temperature=temperature, top_k=top_k)
  return [tokens_lib.decode(row) for row in np.asarray(out)]

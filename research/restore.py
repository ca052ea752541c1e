"""Using a workdir after training: load its parameters, or evaluate them on a split.

    import research
    run = research.load_run('workdirs/default')
    logits = run.model.apply({'params': run.params}, inputs)
"""
import dataclasses
import pathlib

import ml_collections
from flax import linen as nn

from research import checkpoint, config as config_lib, experiment, train
from research.errors import UserError


@dataclasses.dataclass(frozen=True)
class LoadedRun:
  config: ml_collections.ConfigDict
  model: nn.Module
  params: dict
  step: int
  state: experiment.TrainState


def _open(workdir: str, step: int | None) -> tuple[experiment.Experiment, experiment.TrainState]:
  path = pathlib.Path(workdir)
  if not (path / 'config.json').is_file():
    raise UserError(f"{str(path)!r} is not a research workdir (no config.json)")
  exp = experiment.build(config_lib.from_json_file(path / 'config.json'))
  ckpt = checkpoint.Checkpointer(path, keep=exp.config.get('keep_checkpoints', 3))
  step = ckpt.latest_step() if step is None else step
  if step is None:
    raise UserError(f"workdir {str(path)!r} has no checkpoint to restore")
  template = exp.init_state()
  state = experiment.state_from_saved(
      template, ckpt.restore(step, experiment.state_to_save(template)))
  ckpt.close()
  return exp, state


def load_run(workdir: str, step: int | None = None) -> LoadedRun:
  """The model and parameters of `workdir`'s newest checkpoint (or of `step`)."""
  exp, state = _open(workdir, step)
  return LoadedRun(config=exp.config, model=exp.model, params=state.params,
                   step=int(state.step), state=state)


def evaluate_workdir(workdir: str, split: str = 'test', step: int | None = None) -> dict:
  """Restores `workdir` and returns {'step', 'split', 'loss', 'accuracy', 'count'} on `split`."""
  exp, state = _open(workdir, step)
  if split not in exp.info.splits:
    raise UserError(f"unknown split {split!r}; allowed: {', '.join(exp.info.splits)}")
  steps = train.Steps(exp)
  return {'step': int(state.step), 'split': split,
          **steps.evaluate(exp.devices.replicate(state), split)}

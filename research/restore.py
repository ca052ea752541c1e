"""Using a workdir after training: load its parameters, or evaluate them on a split.

    import research
    run = research.load_run('workdirs/default')
    logits = run.model.apply({'params': run.params}, inputs)
"""
import dataclasses
import pathlib

import jax
import ml_collections
import numpy as np
from flax import linen as nn

from research import checkpoint, config as config_lib, experiment, generate, parallel, train
from research import tokens as tokens_lib
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
  exp = experiment.build(parallel.fit_to_host(config_lib.from_json_file(path / 'config.json')))
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

"""`research explain` on a workdir: check the request, compute, then write DIR/explain/.

Every check runs before anything is computed or written, so bad input (a workdir whose training
has not finished, a split it does not have, more examples than the split holds, a method that
does not apply to the model) is one UserError and leaves the workdir as it was. The run's own
files are only read (research.load_run opens checkpoints read-only); the outputs go into
DIR/explain/ alone, replaced as a whole on each call.
"""
import pathlib
import time

import numpy as np

from research import api
from research.errors import UserError, unknown
from research.explain import attention as attention_lib
from research.explain import compute, methods as methods_lib, output, target
from research.rundir import layout

DEFAULT_EXAMPLES = 8
STATS_EXAMPLES = 256
ROBUSTNESS_EXAMPLES = 500


def _check_finished(path: pathlib.Path) -> None:
  if not layout.is_run(path):
    raise UserError(f"{str(path)!r} is not a research workdir (no {layout.CONFIG})")
  if layout.summary(path) is None:
    raise UserError(f"workdir {str(path)!r} holds no finished run (no {layout.SUMMARY}): finish "
                    "its training first (rerun its train command; it resumes)")


def applicable_methods(run, requested: tuple | None) -> tuple:
  """The methods to run: `requested` if each applies to this model, else a UserError naming the
  first that does not; with none requested, every method that applies."""
  info = run.dataset.info
  has_attention = attention_lib.has_attention(run.model, run.variables, tuple(info.input_shape),
                                              np.dtype(info.input_dtype))
  reasons = {}
  if target.is_token_model(run):
    for method in compute.ATTRIBUTIONS:
      reasons[method] = (f"{method} needs real-valued inputs, but this {run.config.model.name!r} "
                         "model reads integer tokens")
  if not has_attention:
    reasons['attention'] = (f"attention maps need attention layers, and this "
                            f"{run.config.model.name!r} model has none")
  if requested is None:
    return tuple(m for m in compute.METHODS if m not in reasons)
  for method in requested:
    if method in reasons:
      allowed = [m for m in compute.METHODS if m not in reasons]
      raise UserError(f"{reasons[method]}; methods for this model: {', '.join(allowed)}")
  return requested


def _check_split(run, split: str, examples: int) -> int:
  info = run.dataset.info
  if split not in info.splits:
    raise unknown('split', split, info.splits)
  size = int(info.split_sizes[split])
  if examples > size:
    raise UserError(f"--examples {examples} is more than the {split!r} split's {size} examples")
  return size


def explain_workdir(workdir: str, *, split: str = 'test', examples: int = DEFAULT_EXAMPLES,
                    methods=None, step: int | None = None,
                    options: compute.Options | None = None,
                    robustness_examples: int = ROBUSTNESS_EXAMPLES) -> tuple[dict, list]:
  """Explains `workdir`'s run on the first `examples` of `split`; writes DIR/explain/.

  Returns (the numbers written to explain.json, the paths written)."""
  path = pathlib.Path(workdir)
  requested = methods_lib.parse(methods)
  if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
    raise UserError(f"--examples must be an integer >= 1, got {examples!r}")
  _check_finished(path)
  options = options or compute.Options()
  started = time.perf_counter()
  run = api.load_run(str(path), step)
  size = _check_split(run, split, examples)
  chosen = applicable_methods(run, requested)
  if options.robustness:
    if run.config.task == 'regression':
      raise UserError("--robustness measures accuracy, which a regression run does not have "
                      "(attributions still apply: drop --robustness)")
    target.needs_real_inputs(run, '--robustness')
  options = compute.Options(**{**options.__dict__, 'methods': chosen})
  wanted = max(examples, min(size, STATS_EXAMPLES) if 'activations' in chosen else 0,
               min(size, robustness_examples) if options.robustness else 0)
  inputs, labels = run.batch(split, wanted)
  explanation = compute.explain(
      run, inputs[:examples], labels[:examples], options, stats_inputs=inputs,
      robustness_inputs=inputs[:robustness_examples], robustness_labels=labels[:robustness_examples])
  seconds = time.perf_counter() - started
  numbers = output.numbers(run, explanation, options, split=split, seconds=seconds,
                           stats_examples=len(inputs))
  return numbers, output.write(path / layout.EXPLAIN, run, explanation, numbers)

"""Transfer from a trained run: `config.init_from = 'WORKDIR[:STEP]'`.

The source is a finished run (its summary.json exists) of the same model family. Its checkpoint is
read as plain arrays, without rebuilding its model or opening its data, so a source trained on
another dataset (other classes, other input size) works. Every parameter path of the new model
whose source array has the same shape is loaded; a path the source lacks, or has with another
shape (a head for another number of classes), keeps its fresh initialization; source paths the
new model lacks are dropped. `config.init_batch_stats` loads BatchNorm statistics the same way.
The mapping is logged when the run is built; `optimizer.freeze` and `optimizer.group_lr`
(core/optim.py) then choose what trains.

Training reads the source whenever it builds the run (a resumed run too, whose own checkpoint
then replaces what was loaded, so the source must still exist); loading a finished run
(`research eval`, `load_run`) never reads it.
"""
import dataclasses
import logging
import pathlib

import jax
import numpy as np

from research.core import optim
from research.errors import UserError
from research.rundir import checkpoint, layout

log = logging.getLogger('research')


@dataclasses.dataclass(frozen=True)
class Source:
  """A finished run's arrays: {'a/b/kernel': array} for params and BatchNorm statistics."""
  workdir: str
  step: int
  params: dict
  batch_stats: dict

  def merge(self, params, batch_stats=None, with_stats: bool = True):
    """(params, batch_stats) with every path of matching shape replaced by the source's."""
    def take(tree, source):
      if tree is None:
        return None
      return _unflatten_like(tree, {path: source.get(path, leaf) if _fits(source.get(path), leaf)
                                    else leaf for path, leaf in optim.flat_paths(tree)})
    return take(params, self.params), (take(batch_stats, self.batch_stats) if with_stats
                                       else batch_stats)

  def mapping(self, params) -> dict[str, list[str]]:
    """{'loaded': paths, 'reinitialized': paths (with the reason), 'dropped': source paths}."""
    own = dict(optim.flat_paths(params))
    loaded = [p for p, leaf in own.items() if _fits(self.params.get(p), leaf)]
    fresh = [p if p not in self.params else
             f'{p} (shape {tuple(self.params[p].shape)} -> {tuple(own[p].shape)})'
             for p in own if p not in loaded]
    return {'loaded': loaded, 'reinitialized': fresh,
            'dropped': [p for p in self.params if p not in own]}


def _fits(source, leaf) -> bool:
  return source is not None and tuple(source.shape) == tuple(leaf.shape)


def _unflatten_like(tree, by_path: dict):
  leaves = [by_path[path] for path, _ in optim.flat_paths(tree)]
  return jax.tree.unflatten(jax.tree.structure(tree), leaves)


def parse(spec: str) -> tuple[pathlib.Path, int | None]:
  """('WORKDIR', STEP or None) of 'WORKDIR[:STEP]'."""
  head, sep, tail = spec.rpartition(':')
  if sep and tail.isdigit() and head:
    return pathlib.Path(head), int(tail)
  return pathlib.Path(spec), None


def load(spec: str, model_name: str) -> Source:
  """The arrays of `spec`'s checkpoint; UserError for a missing or unfinished run, a step that
  is not kept, or another model family than `model_name`."""
  where, step = parse(spec)
  name = f'config.init_from={spec!r}'
  if not layout.is_run(where):
    raise UserError(f"{name}: {str(where)!r} is not a research workdir (no {layout.CONFIG})")
  if layout.summary(where) is None:
    raise UserError(f"{name}: the run in {str(where)!r} has not finished (no {layout.SUMMARY}); "
                    "finish it first (rerun its train command) or name a finished run")
  source_model = (layout.config(where) or {}).get('model', {}).get('name')
  if source_model != model_name:
    raise UserError(f"{name}: that run trained model {source_model!r}, this one is "
                    f"{model_name!r}; parameters transfer within one model family")
  ckpt = checkpoint.Checkpointer(where, read_only=True)
  try:
    kept = ckpt.all_steps()
    if step is not None and step not in kept:
      raise UserError(f"{name}: step {step} is not kept; kept steps: "
                      f"{', '.join(map(str, kept)) or 'none'}")
    if step is None:
      step, saved = ckpt.restore_newest_good(None)
    else:
      saved = ckpt.restore(step, None)
  finally:
    ckpt.close()
  flat = lambda tree: {p: np.asarray(v) for p, v in optim.flat_paths(tree or {})}
  return Source(workdir=str(where), step=int(step), params=flat(saved['params']),
                batch_stats=flat(saved.get('batch_stats')))


def log_mapping(source: Source, params) -> dict[str, list[str]]:
  """Logs (and returns) which paths were loaded, re-initialized and dropped."""
  mapping = source.mapping(params)
  log.info('init_from %s (step %d): loaded %d parameter arrays, re-initialized %d, dropped %d',
           source.workdir, source.step, *(len(v) for v in mapping.values()))
  for kind, paths in mapping.items():
    for path in paths:
      log.info('  %s: %s', kind, path)
  return mapping

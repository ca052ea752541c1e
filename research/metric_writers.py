"""Writers beyond the JSONL contract: TensorBoard event files and (optionally) Weights & Biases.

Every writer has the `metrics.MetricWriter` interface (`write(step, split, values)`, `close()`)
and sits behind one `metrics.MultiWriter`, so the training loop writes each row once.

Resuming: the JSONL writer drops rows logged after the restored step; the TensorBoard writer
opens its next event files with `purge_step` = that step + 1, which makes TensorBoard discard
the older files' points from there on (the same rows the JSONL file dropped); W&B keeps the rows
it already has and ignores re-logged steps it has seen (resumed runs re-log the same values).
"""
import math
import os
import pathlib
import secrets
import time
from typing import Mapping

import ml_collections
from tensorboardX import SummaryWriter

from research import config as config_lib
from research import schema

WANDB_MODES = schema.CHOICES['wandb.mode']


def _scalars(values: Mapping) -> dict:
  """The numeric entries of a metric row (bools and text are not curves)."""
  return {k: float(v) for k, v in values.items()
          if isinstance(v, (int, float)) and not isinstance(v, bool)}


class TensorBoardWriter:
  """Scalars into `logdir/<split>/` event files, one tag per metric (`loss`, `accuracy`, ...).

  One folder per split makes TensorBoard draw train, validation and test as runs on the same
  charts (`tensorboard --logdir WORKDIR`). Written with tensorboardX: no TensorFlow needed.
  Each row is flushed, like the JSONL file, so a killed run leaves both files consistent.
  """

  def __init__(self, logdir: str | os.PathLike):
    self.logdir = pathlib.Path(logdir)
    self._writers: dict[str, SummaryWriter] = {}
    self._purge_step: int | None = None

  def truncate_after(self, step: int) -> int:
    """Makes TensorBoard hide points after `step` written by an earlier process (see above)."""
    self.close()
    self._purge_step = step + 1
    if self.logdir.is_dir():  # Every split written so far, even one not written again soon.
      for split_dir in sorted(p for p in self.logdir.iterdir() if p.is_dir()):
        self._writer(split_dir.name)
    return 0  # Nothing is deleted: TensorBoard skips the purged points when it reads.

  def _writer(self, split: str) -> SummaryWriter:
    if split not in self._writers:
      # A unique suffix: two writers opened within the same second must not share a file name.
      self._writers[split] = SummaryWriter(
          str(self.logdir / split), purge_step=self._purge_step,
          filename_suffix=f'.{time.time_ns()}')
    return self._writers[split]

  def write(self, step: int, split: str, values: Mapping) -> None:
    writer = self._writer(split)
    for name, value in _scalars(values).items():
      writer.add_scalar(name, value, int(step))
    writer.flush()

  def close(self) -> None:
    for writer in self._writers.values():
      writer.close()
    self._writers = {}


check_wandb = config_lib.check_wandb  # W&B settings that cannot work: stated with the others.


class WandbWriter:
  """Logs rows to a Weights & Biases run as `<split>/<metric>` at their step.

  The run id is kept in `workdir/wandb_run_id`, so a resumed training continues the same W&B run.
  """

  def __init__(self, settings: ml_collections.ConfigDict, workdir: pathlib.Path,
               config: Mapping):
    check_wandb(settings)
    import wandb  # pylint: disable=g-import-not-at-top  (optional dependency)
    id_file = workdir / 'wandb_run_id'
    run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(8)
    id_file.write_text(run_id + '\n')
    self._run = wandb.init(project=settings.project, entity=settings.entity,
                           mode=settings.mode, dir=str(workdir), id=run_id, resume='allow',
                           name=workdir.name, config=dict(config))

  def write(self, step: int, split: str, values: Mapping) -> None:
    row = {f'{split}/{k}': v for k, v in _scalars(values).items() if math.isfinite(v)}
    self._run.log(row, step=int(step))

  def close(self) -> None:
    self._run.finish()

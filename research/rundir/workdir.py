"""Writing a run's directory: the lock, config.json / run.json / dataset.json at a start that
will run, metric writers, summary.json. The layout (every file's name) and the readers are
research/layout.py.

Only process 0 writes these files; every file is replaced atomically (write a temporary file,
then rename), so a run killed at any moment leaves each file either old or new, never half.
"""
import contextlib
import json
import logging
import os
import pathlib
import socket
import tempfile
import time
from typing import Iterator

import jax
import ml_collections

from research import config as config_lib
from research.rundir import layout, metric_writers, provenance
from research.errors import UserError

log = logging.getLogger('research')

# Settings that define what a checkpoint *is*: resuming with any of them changed would restore
# into a different model or continue on different data, so it is refused.
IDENTITY_KEYS = ('model', 'dataset.name', 'dataset.validation_fraction', 'dataset.shuffle',
                 'loss', 'seed', 'batch_size', 'optimizer.name', 'env.name')




def _atomic_write(path: pathlib.Path, text: str) -> None:
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
  with os.fdopen(fd, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


class Workdir:
  """Creates (or reopens) a run directory and checks that it is writable.

  `dataset`: the run's dataset record (`data.Dataset.record()`), written to dataset.json with
  config.json by `record_start`."""

  def __init__(self, path: str | os.PathLike, dataset: dict | None = None):
    self.path = pathlib.Path(path).absolute()
    self.dataset = dataset
    self.is_writer = jax.process_index() == 0
    self.start_time = provenance.utc_now()
    self.source: provenance.ConfigSource | None = None
    try:
      self.path.mkdir(parents=True, exist_ok=True)
      probe = tempfile.NamedTemporaryFile(dir=self.path, prefix='.write-probe-')
      probe.close()
    except OSError as e:
      raise UserError(f"workdir {str(self.path)!r} is not a writable directory: "
                      f"{e.strerror or e}") from None

  @property
  def config_path(self) -> pathlib.Path:
    return self.path / layout.CONFIG

  def stored_config(self) -> dict | None:
    """The config.json of an earlier start (None when there is none)."""
    return layout.config(self.path)

  def check_same_experiment(self, config: ml_collections.ConfigDict) -> None:
    """Refuses a workdir whose config.json describes another experiment (identity keys differ),
    whether or not it holds checkpoints: its metric rows and reports belong to that experiment.
    Reads only; a refused run writes nothing."""
    stored = self.stored_config()
    if stored is None:
      return
    new = json.loads(config_lib.to_json(config))
    # Settings the old config.json predates read as their defaults (e.g. dataset.shuffle).
    old = config_lib.with_defaults(stored)
    pairs = {key: (config_lib.lookup(old, key), config_lib.lookup(new, key))
             for key in IDENTITY_KEYS}
    changed = [f"{key}: {a!r} -> {b!r}" for key, (a, b) in pairs.items() if a != b]
    if changed:
      raise UserError(f"workdir {str(self.path)!r} holds a run of a different experiment "
                      f"({'; '.join(changed)}); use a new --workdir")

  def record_start(self, config: ml_collections.ConfigDict,
                   source: provenance.ConfigSource | None) -> None:
    """Writes config.json, run.json and dataset.json, and appends changed settings to
    config_changes.jsonl: called only once training (or the final evaluation) will really run,
    so a refused or no-op start leaves the files describing the run that happened."""
    stored = self.stored_config()
    if stored is not None and self.is_writer:
      # Settings the old config.json predates read as their defaults: not changes.
      old, new = config_lib.with_defaults(stored), json.loads(config_lib.to_json(config))
      changes = {key: [a, b] for key, (a, b) in config_lib.flat_diff(old, new).items()}
      if changes:
        log.info('resuming with changed settings: %s',
                 ', '.join(f'{k}: {a!r} -> {b!r}' for k, (a, b) in changes.items()))
        with open(self.path / layout.CONFIG_CHANGES, 'a') as f:
          f.write(json.dumps({'time': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
                              'changes': changes}) + '\n')
    self.write_config(config)
    self.write_source(source)
    if self.dataset is not None and self.is_writer:
      _atomic_write(self.path / layout.DATASET, json.dumps(self.dataset, indent=2) + '\n')

  @contextlib.contextmanager
  def lock(self) -> Iterator[None]:
    """Holds `workdir/.lock` (host and pid) for the block: one run per workdir.

    A lock whose process is gone (killed, or the machine restarted) is taken over with a
    warning; a live one, or one held from another host, is refused with a UserError.
    """
    if not self.is_writer:
      yield
      return
    path, me = self.path / layout.LOCK, f'{socket.gethostname()} {os.getpid()}'
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      with os.fdopen(fd, 'w') as f:
        f.write(me + '\n')
    except FileExistsError:
      host, pid = _lock_owner(path)
      if host != socket.gethostname():
        raise UserError(f"workdir {str(self.path)!r} is locked by process {pid} on host {host!r}; "
                        f"if that run is gone, delete {path} and rerun") from None
      if pid is not None and _alive(pid):
        raise UserError(f"workdir {str(self.path)!r} is in use by process {pid}; wait for it to "
                        "finish or use another --workdir") from None
      log.warning('taking over %s from process %s, which is no longer running', path, pid)
      _atomic_write(path, me + '\n')
    try:
      yield
    finally:
      if path.exists() and path.read_text().strip() == me:
        path.unlink()

  def write_config(self, config: ml_collections.ConfigDict) -> None:
    if self.is_writer:
      _atomic_write(self.config_path, config_lib.to_json(config) + '\n')

  def write_source(self, source: provenance.ConfigSource | None) -> None:
    """Records where the config came from in run.json (None: built in Python, not from a file)."""
    self.source = source
    if self.is_writer:
      record = (source or provenance.ConfigSource(file=None)).to_dict()
      _atomic_write(self.path / layout.RUN, json.dumps(
          {**record, 'start_time': self.start_time}, indent=2) + '\n')

  def metric_writer(self, config: ml_collections.ConfigDict | None = None
                    ) -> metric_writers.MultiWriter:
    """JSONL (the contract) and log lines; TensorBoard unless `config.tensorboard` is False;
    W&B when `config.wandb.enabled`. Only process 0 writes."""
    if not self.is_writer:
      return metric_writers.MultiWriter([])
    writers = [metric_writers.JsonlWriter(self.path / layout.METRICS), metric_writers.LogWriter()]
    config = config or config_lib.base()
    if config.tensorboard:
      writers.append(metric_writers.TensorBoardWriter(self.path / 'tensorboard'))
    if config.wandb.enabled:
      writers.append(metric_writers.WandbWriter(config.wandb, self.path, config.to_dict()))
    return metric_writers.MultiWriter(writers)

  def metric_rows(self) -> list[dict]:
    """The rows of metrics.jsonl, oldest first ([] before the first; a torn last line, what a
    crash mid-write leaves, is left out)."""
    return layout.rows(self.path)

  def summary(self) -> dict | None:
    return layout.summary(self.path)

  def write_summary(self, summary: dict, devices) -> dict:
    """Writes summary.json: `summary` plus host, devices, versions, git state, start/end time."""
    summary = {**summary, **provenance.collect(devices, self.source, self.start_time)}
    if self.is_writer:
      _atomic_write(self.path / layout.SUMMARY, json.dumps(summary, indent=2) + '\n')
    return summary


def _lock_owner(path: pathlib.Path) -> tuple[str, int | None]:
  """(host, pid) written in a lock file; a damaged file reads as this host, no pid (stale)."""
  parts = path.read_text().split()
  if len(parts) == 2 and parts[1].isdigit():
    return parts[0], int(parts[1])
  return socket.gethostname(), None


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Someone else's live process.
    return True
  return True

"""Where a run came from and what it ran on: the config file, host, devices, package versions,
the git commit (with a dirty flag) and the start and end time.

`summary.json` carries these so that a result can be traced back to code and hardware, and
`run.json` records the config file, its argument and the overrides, with the file's defaults
(`get_config(arg)` before the overrides) and the requested config (after them) as plain JSON:
a report diffs the run's config against those, and never imports the config file a workdir
names (a received workdir's run.json could name any code). Nothing here may fail a run: a
missing git, a directory outside any repository or an uninstalled package reads as None.
"""
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import socket
import subprocess
from importlib import metadata
from typing import Sequence

import jax

VERSIONED_PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'grain',
                      'tensorflow-datasets', 'ml-collections', 'numpy')
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class ConfigSource:
  """How the config was made: `file` (absolute path) called with `arg`, then `overrides`.

  `defaults` is what `get_config(arg)` returned and `requested` the config after the overrides
  (both plain JSON, FieldReferences resolved, before the run derives any value); None in the
  run.json of runs started before they were recorded, or from Python."""
  file: str | None
  arg: str | None = None
  overrides: tuple[str, ...] = ()
  defaults: dict | None = None
  requested: dict | None = None

  @classmethod
  def from_spec(cls, spec: str, overrides: Sequence[str] = (), defaults=None,
                requested=None) -> 'ConfigSource':
    """From a command line's `path.py[:arg]`, its 'a.b=V' overrides, and the ConfigDicts (or
    plain dicts) the file gave before (`defaults`) and after (`requested`) the overrides."""
    path, _, arg = spec.partition(':')
    return cls(file=str(pathlib.Path(path).resolve()), arg=arg or None,
               overrides=tuple(overrides), defaults=plain(defaults), requested=plain(requested))

  @property
  def spec(self) -> str | None:
    """The `path.py[:arg]` string the run was started with (None when not recorded)."""
    if self.file is None:
      return None
    return f'{self.file}:{self.arg}' if self.arg else self.file

  def to_dict(self) -> dict:
    return {'config_file': self.file, 'config_arg': self.arg, 'overrides': list(self.overrides),
            'config_defaults': self.defaults, 'config_requested': self.requested}

  @classmethod
  def from_dict(cls, record: dict) -> 'ConfigSource':
    """From run.json's fields; values of the wrong type (a damaged file) read as not recorded."""
    def tree(key):
      return record.get(key) if isinstance(record.get(key), dict) else None
    text = {k: record.get(k) if isinstance(record.get(k), str) else None
            for k in ('config_file', 'config_arg')}
    overrides = record.get('overrides')
    return cls(file=text['config_file'], arg=text['config_arg'],
               overrides=tuple(map(str, overrides)) if isinstance(overrides, list) else (),
               defaults=tree('config_defaults'), requested=tree('config_requested'))


def plain(config) -> dict | None:
  """A ConfigDict (or dict) as config.json holds it: FieldReferences resolved, tuples as lists,
  anything else JSON lacks as its str(); None stays None."""
  if config is None:
    return None
  tree = config.to_dict() if hasattr(config, 'to_dict') else config
  return json.loads(json.dumps(tree, sort_keys=True, default=str))


def utc_now() -> str:
  """The current time as ISO 8601 in UTC, to the second (e.g. 2026-11-30T13:45:12+00:00)."""
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def package_versions() -> dict:
  """Python's and the main packages' versions (None for a package that is not installed)."""
  versions = {'python': platform.python_version()}
  for package in VERSIONED_PACKAGES:
    try:
      versions[package] = metadata.version(package)
    except metadata.PackageNotFoundError:
      versions[package] = None
  return versions


def git_state(path: str | os.PathLike | None = None) -> dict:
  """{'commit', 'dirty', 'repository'} of the git checkout holding `path` (a file or a folder;
  default: the research package). All None when git is missing or `path` is in no checkout.

  `dirty` is True when tracked files differ from the commit (untracked files do not count).
  """
  folder = pathlib.Path(path or _PACKAGE_DIR)
  folder = folder if folder.is_dir() else folder.parent
  root = _git(folder, 'rev-parse', '--show-toplevel')
  commit = _git(folder, 'rev-parse', 'HEAD') if root else None
  changes = _git(folder, 'status', '--porcelain', '--untracked-files=no') if commit else None
  return {'commit': commit, 'dirty': None if changes is None else bool(changes),
          'repository': root}


def _git(folder: pathlib.Path, *args: str) -> str | None:
  try:
    result = subprocess.run(['git', '-C', str(folder), *args], capture_output=True, text=True,
                            timeout=20, check=False)
  except (OSError, subprocess.SubprocessError):
    return None
  return result.stdout.strip() if result.returncode == 0 else None


def device_summary(devices) -> dict:
  """Kind, platform and count of the devices a `parallel` layout trains on."""
  first = devices.devices[0]
  return {'count': devices.num_devices, 'mode': devices.mode, 'kind': first.device_kind,
          'platform': first.platform, 'processes': jax.process_count()}


def collect(devices, source: ConfigSource | None, start_time: str) -> dict:
  """The metadata block of `summary.json`; `end_time` is now."""
  return {'host': socket.gethostname(),
          'devices': device_summary(devices),
          'versions': package_versions(),
          'git': git_state(source.file if source and source.file else None),
          'start_time': start_time,
          'end_time': utc_now()}

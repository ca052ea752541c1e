"""One process at a time prepares a dataset in a data_dir; the others wait and then read it.

Runs started side by side (a local sweep with `--jobs 2`, SLURM array tasks, test workers) on a
fresh data_dir would each build the same bundled dataset, all but one of them for nothing (TFDS
writes to a temporary directory and renames, so the result is right either way, but the CPU is
spent N times). An advisory `flock` on a file beside the dataset serializes the builds; the
caller checks `is_prepared()` again once it holds the lock. The kernel releases the lock when
its holder exits, killed or not, so a crashed build never blocks the next run.
"""
import contextlib
import fcntl
import os
from typing import Iterator


@contextlib.contextmanager
def held(data_dir: str, dataset_name: str) -> Iterator[None]:
  """Holds the exclusive build lock of `dataset_name` (as configured, e.g. `mnist1d/shuffled`)."""
  os.makedirs(data_dir, exist_ok=True)
  path = os.path.join(data_dir, f'.{dataset_name.replace("/", "-")}.build.lock')
  with open(path, 'a', encoding='utf-8') as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)

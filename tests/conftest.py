"""Test session set-up: 8 fake CPU devices and one prepared TFDS data_dir for every test.

XLA_FLAGS must be set before jax is first imported, so it happens here, at collection time.
Tests that want one device say so (`num_devices=1`); multi-device tests use all 8. Subprocesses
(the CLI tests) inherit both variables unless a test overrides them.
"""
import os
import pathlib
import signal
import subprocess
import tempfile

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
# JAX's persistent compilation cache, shared by the test processes, the pytest-xdist workers
# (which inherit the variable from the controller) and every CLI subprocess: most tests compile
# the same few programs, and on 2 cores compilation is most of a test's time. Results do not
# change: a cached executable is the one the compiler would have produced.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _CACHE_DIR = tempfile.TemporaryDirectory(prefix='research-jax-cache-')
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _CACHE_DIR.name
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'
# Bundled datasets are built once per test session, into a directory that is removed after it
# and shared by the pytest-xdist workers (made by the controller, whose environment they inherit;
# research/data/build_lock.py makes a worker wait while the other prepares the same dataset).
if 'RESEARCH_TEST_TFDS_DATA_DIR' not in os.environ:
  _DATA_DIR = tempfile.TemporaryDirectory(prefix='research-tfds-')
  os.environ['RESEARCH_TEST_TFDS_DATA_DIR'] = _DATA_DIR.name
os.environ['TFDS_DATA_DIR'] = os.environ['RESEARCH_TEST_TFDS_DATA_DIR']

import pytest  # noqa: E402  (after the environment is set)

import forkserver  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def data_dir() -> str:
  return os.environ['RESEARCH_TEST_TFDS_DATA_DIR']


def run_cli(*args: str, devices: int = 1, timeout: float = 600, env: dict | None = None,
            kill_when: str | pathlib.Path | None = None, kill_after: float = 0.0,
            kill_signal: int = signal.SIGKILL) -> subprocess.CompletedProcess:
  """Runs `python -m research ARGS` from the repository root with `devices` CPU devices; with
  `kill_when`, SIGKILLs it as soon as that path exists (returncode -9 if it was still running),
  or `kill_after` seconds later, or sends `kill_signal` instead and waits for its exit."""
  full_env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  full_env.update(env or {})
  # Forked from a process that has the package imported already (tests/forkserver.py).
  return forkserver.run(list(args), full_env, str(ROOT), timeout,
                        str(kill_when) if kill_when else None, kill_after, kill_signal)



def assert_usage_error(result: subprocess.CompletedProcess, *needles: str) -> None:
  """Bad input's contract: exit 2, no traceback, one error line naming every needle."""
  assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
  assert 'Traceback' not in result.stderr
  error_lines = [l for l in result.stderr.splitlines() if 'error' in l]
  assert len(error_lines) == 1, result.stderr
  for needle in needles:
    assert needle in error_lines[0], error_lines[0]

def pytest_collection_modifyitems(config, items):
  """Slow tests (whole CLI runs) first, the rest after, each group in its file order.

  pytest-xdist hands tests to its workers in this order, so the long tests start while the
  short ones can still fill the gaps: otherwise a long test collected late runs alone on one
  core at the end of the session while the other worker idles."""
  items.sort(key=lambda item: item.get_closest_marker('slow') is None)

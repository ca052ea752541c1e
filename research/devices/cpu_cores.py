"""How many CPU cores a run's process uses: `config.cpu_cores` (0: every core it may use).

Why fewer can be faster: XLA:CPU runs a program's kernels on a pool of one thread per core. A
program made of many tiny kernels inside a loop (a DQN chunk: environment steps, replay and
128-example updates) has them handed between the threads, and the hand-offs cost more than the
second core gives: on the 2-core machine one CartPole seed trained 37k environment steps/s on one
core against 26k on two (benchmarks/README.md, `dqn_speed.py`). Large kernels (wide matmuls,
convolutions over big batches) do use every core, so the default is all of them.

How: the process's main thread is pinned to the first `cpu_cores` of the cores it may use
(`os.sched_setaffinity`, the mechanism of `taskset`) before JAX creates its CPU client, whose
thread pool is sized by, and inherits, that affinity. Results do not depend on it (the thread
count changes which thread runs a kernel, not the arithmetic; tests/test_cpu_cores.py). Where
JAX's backend has started already (a notebook that ran JAX before calling
`research.train_and_evaluate`), its threads exist and keep their cores: the setting is then not
applied and a warning says so. The command line applies it before JAX starts.
"""
import logging
import os
import sys

import ml_collections

from research.errors import UserError

log = logging.getLogger('research')


def apply(config: ml_collections.ConfigDict) -> tuple[int, ...] | None:
  """Pins this process to `config.cpu_cores` cores when set (> 0) and JAX's backend has not
  started; returns the cores pinned to, or None when nothing changed."""
  wanted = config.cpu_cores
  if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 0:
    raise UserError(f'config.cpu_cores must be an int >= 0 (0: every core this process may '
                    f'use), got {wanted!r}')
  if not wanted:
    return None
  allowed = sorted(os.sched_getaffinity(0))
  if wanted > len(allowed):
    raise UserError(f'config.cpu_cores={wanted}, but this process may use {len(allowed)} '
                    f'CPU core(s) ({", ".join(map(str, allowed))}): use 1-{len(allowed)}, '
                    'or 0 for all of them')
  cores = tuple(allowed[:wanted])
  if wanted == len(allowed):
    return None
  if _backend_started():
    log.warning('config.cpu_cores=%d is not applied: JAX started its CPU threads before this run '
                '(on %d cores); set it before JAX starts (research train does)',
                wanted, len(allowed))
    return None
  os.sched_setaffinity(0, cores)
  log.info('cpu_cores=%d: this process runs on CPU core(s) %s', wanted,
           ', '.join(map(str, cores)))
  return cores


def _backend_started() -> bool:
  """Whether JAX has created its backends (and with them its thread pools) in this process."""
  if 'jax' not in sys.modules:
    return False
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  return xla_bridge.backends_are_initialized()

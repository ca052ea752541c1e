"""How a run uses the host's CPUs: `config.cpu_cores` (cores the process runs on; 0: all it may
use) and `config.cpu_devices` (how many CPU devices JAX makes; unset: JAX's own choice).

Why fewer cores can be faster: XLA:CPU runs a program's kernels on a pool of one thread per core.
A program made of many tiny kernels inside a loop (a DQN chunk: environment steps, replay and
128-example updates) has them handed between the threads, and the hand-offs cost more than the
second core gives: on the 2-core machine one CartPole seed trained 26k environment steps/s on one
core against 15k on two (load ~2.7). Large kernels (wide matmuls, convolutions over big batches)
do use every core, so the default is all of them.

Why several CPU devices: independent work placed on different devices runs at the same time, one
device's program per core. A DQN group spreads its seeds over the CPU devices this way
(research/run/agent.py); a supervised run with several devices runs data parallel, as on
accelerators (and with results that differ from one device's in the last bits, as there).

Both must be decided before JAX creates its CPU client: the main thread is pinned to the first
`cpu_cores` of the cores it may use (`os.sched_setaffinity`, the mechanism of `taskset`; the
client's thread pool is sized by, and inherits, that affinity), and `jax_num_cpu_devices` is set
(it takes precedence over XLA_FLAGS' --xla_force_host_platform_device_count). The command line
applies them before JAX starts. Where JAX's backend has started already (a notebook that ran JAX
before calling `research.train_and_evaluate`), its threads and devices exist: a setting that
differs from them is not applied, and a warning says so. Thread counts do not change results
(tests/test_host_cpus.py).
"""
import logging
import os
import sys

import ml_collections

from research.errors import UserError

log = logging.getLogger('research')


def apply(config: ml_collections.ConfigDict) -> None:
  """Pins this process to `config.cpu_cores` cores and makes `config.cpu_devices` CPU devices,
  where set and JAX's backend has not started."""
  cores, devices = config.cpu_cores, config.cpu_devices
  _check_int('cpu_cores', cores, 0, '0: every core this process may use')
  if devices is not None:
    _check_int('cpu_devices', devices, 1, "None: JAX's default")
  started = _backend_started()
  if cores:
    _pin(cores, started)
  if devices is not None:
    _make_devices(devices, started)


def _check_int(key: str, value, minimum: int, means: str) -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
    raise UserError(f'config.{key} must be an int >= {minimum} ({means}), got {value!r}')


def _pin(cores: int, started: bool) -> None:
  allowed = sorted(os.sched_getaffinity(0))
  if cores > len(allowed):
    raise UserError(f'config.cpu_cores={cores}, but this process may use {len(allowed)} '
                    f'CPU core(s) ({", ".join(map(str, allowed))}): use 1-{len(allowed)}, '
                    'or 0 for all of them')
  if cores == len(allowed):
    return
  if started:
    log.warning('config.cpu_cores=%d is not applied: JAX started its CPU threads before this run '
                '(on %d cores); set it before JAX starts (research train does)',
                cores, len(allowed))
    return
  os.sched_setaffinity(0, allowed[:cores])
  log.info('cpu_cores=%d: this process runs on CPU core(s) %s', cores,
           ', '.join(map(str, allowed[:cores])))


def _make_devices(count: int, started: bool) -> None:
  import jax  # pylint: disable=g-import-not-at-top  (only when set: usage errors stay JAX-free)
  if started:
    have = len(jax.devices('cpu'))
    if have != count:
      log.warning('config.cpu_devices=%d is not applied: JAX started with %d CPU device(s) before '
                  'this run; set it before JAX starts (research train does)', count, have)
    return
  jax.config.update('jax_num_cpu_devices', count)
  log.info('cpu_devices=%d: JAX makes %d CPU devices', count, count)


def _backend_started() -> bool:
  """Whether JAX has created its backends (and with them its threads and devices)."""
  if 'jax' not in sys.modules:
    return False
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  return xla_bridge.backends_are_initialized()

"""Several processes (hosts) in one run: `jax.distributed.initialize` from flags or environment.

Each process runs the same `research train` command; together they see every device of every
host as one mesh. Where they find each other, in order:
  1. flags: --coordinator-address HOST:PORT --num-processes N --process-id I;
  2. environment: JAX_COORDINATOR_ADDRESS (read by JAX itself) with JAX_NUM_PROCESSES and
     JAX_PROCESS_ID;
  3. --distributed alone: JAX's own detection of the cluster (SLURM, Open MPI, Cloud TPU pod
     slices, Kubernetes JobSets), which fills in everything;
  4. no flag inside a SLURM job step of several tasks (`srun -n 2 research train ...`, where
     srun sets SLURM_STEP_NUM_TASKS > 1): as --distributed; JAX reads the coordinator (the
     step's first node), process count and id from SLURM's variables. A single-task job (a
     sweep's array task) stays single-process.
Without any of these the run is single-process, as before. On CPU, cross-process collectives use
gloo; that is switched on here, at run time and only for distributed runs (never at import).

What each process then does differently is elsewhere: it reads only its share of the data
(data.train_iterator / eval_batches with process_index, process_count), writes its own shards
of each checkpoint (Orbax, cooperatively), and only process 0 writes metrics, config and summary
(workdir.Workdir.is_writer).
"""
import argparse
import logging
import os
from typing import Mapping

from research.errors import UserError

log = logging.getLogger('research')
ENV_ADDRESS, ENV_PROCESSES, ENV_PROCESS_ID = (
    'JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID')
ENV_SLURM_TASKS = 'SLURM_STEP_NUM_TASKS'  # Set by srun for every task of a step.


def add_arguments(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group(
      'several processes', 'one process per host; all run the same command (see distributed.py)')
  group.add_argument('--distributed', action='store_true',
                     help="initialize JAX's distributed system; alone, the cluster (SLURM, Open "
                          "MPI, Cloud TPU, Kubernetes) is detected")
  group.add_argument('--coordinator-address', metavar='HOST:PORT',
                     help="process 0's address and a free port")
  group.add_argument('--num-processes', type=int, metavar='N')
  group.add_argument('--process-id', type=int, metavar='I', help='0..N-1')


def settings(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> dict | None:
  """The keyword arguments for `jax.distributed.initialize`, or None for a single process."""
  address = getattr(args, 'coordinator_address', None) or environ.get(ENV_ADDRESS)
  count = getattr(args, 'num_processes', None)
  index = getattr(args, 'process_id', None)
  for name, value, env in (('num-processes', count, ENV_PROCESSES),
                           ('process-id', index, ENV_PROCESS_ID)):
    if value is None and environ.get(env):
      try:
        value = int(environ[env])
      except ValueError:
        raise UserError(f"${env}={environ[env]!r} must be an integer") from None
    if name == 'num-processes':
      count = value
    else:
      index = value
  if address is None and count is None and index is None:
    detect = getattr(args, 'distributed', False) or _slurm_tasks(environ) > 1
    return {} if detect else None  # {}: JAX detects the cluster.
  if address is not None and ':' not in address:
    raise UserError(f"--coordinator-address {address!r} must be HOST:PORT")
  if count is not None and count < 1:
    raise UserError(f"--num-processes must be >= 1, got {count}")
  if index is not None and count is not None and not 0 <= index < count:
    raise UserError(f"--process-id must be in 0..{count - 1}, got {index}")
  return {k: v for k, v in (('coordinator_address', address), ('num_processes', count),
                            ('process_id', index)) if v is not None}


def _slurm_tasks(environ: Mapping[str, str]) -> int:
  """The number of tasks of the SLURM job step this process belongs to (0 outside srun)."""
  try:
    return int(environ.get(ENV_SLURM_TASKS, '0'))
  except ValueError:
    return 0


def initialize(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> bool:
  """Joins the processes of a multi-process run (before any JAX computation); False when the
  run is single-process. Raises UserError for inconsistent flags."""
  kwargs = settings(args, environ)
  if kwargs is None:
    return False
  import jax  # pylint: disable=g-import-not-at-top  (the CLI imports JAX lazily)
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # CPU: cross-process.
  try:
    jax.distributed.initialize(**kwargs)
  except (ValueError, RuntimeError) as e:
    given = ', '.join(f'{k}={v}' for k, v in kwargs.items()) or 'auto-detected'
    raise UserError(f"cannot start the distributed run ({given}): "
                    f"{str(e).splitlines()[0]}") from e
  log.info('process %d of %d; %d local and %d global devices', jax.process_index(),
           jax.process_count(), jax.local_device_count(), jax.device_count())
  return True

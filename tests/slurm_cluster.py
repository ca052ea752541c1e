"""A real single-node SLURM cluster for the tests: Debian's slurmctld + slurmd (Slurm 22.05),
`auth/none`, no cgroups, no accounting, all state under one directory.

    python tests/slurm_cluster.py start DIR   # prints `export SLURM_CONF=DIR/slurm.conf`
    python tests/slurm_cluster.py stop DIR

`start` installs the packages with apt-get when they are missing (root only; ~17 s), writes
DIR/slurm.conf (SlurmctldHost=localhost, NodeName=localhost with 4 CPUs, partition
`debug`, proctrack/linuxproc, task/none, free ports, requeued jobs eligible after 5 s instead of
120: AuthInfo=cred_expire=5), starts both daemons and waits until the
node is idle. `stop` ends them by their pidfiles. The pytest fixture (tests/test_slurm.py) shares
one cluster between pytest-xdist workers through a lock file and a user count in DIR.
"""
import fcntl
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

PACKAGES = ('slurmctld', 'slurmd', 'slurm-client')
BINARIES = ('slurmctld', 'slurmd', 'sbatch', 'srun', 'squeue', 'scontrol', 'scancel')
PARTITION = 'debug'


def missing_binaries() -> list[str]:
  return [b for b in BINARIES if shutil.which(b) is None and
          not pathlib.Path('/usr/sbin', b).exists()]


def install() -> str | None:
  """Installs the packages if needed. Returns None when ready, else why they cannot be."""
  if not missing_binaries():
    return None
  if os.geteuid() != 0 or shutil.which('apt-get') is None:
    return 'SLURM is not installed and apt-get as root is not available to install it'
  env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
  command = ['apt-get', 'install', '-y', '-q', '--no-install-recommends', *PACKAGES]
  result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
  if result.returncode != 0:  # Stale package lists: update once and try again.
    subprocess.run(['apt-get', 'update', '-q'], capture_output=True, env=env, timeout=600)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
  if result.returncode != 0:
    return f'apt-get install {" ".join(PACKAGES)} failed: {result.stderr.strip()[-300:]}'
  return None


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def write_config(root: pathlib.Path) -> pathlib.Path:
  for sub in ('state', 'spool'):
    (root / sub).mkdir(parents=True, exist_ok=True)
  # Four CPUs whatever the machine has (SlurmdParameters=config_overrides): the sweep's two
  # array tasks and an `srun -n 2` test fit at once instead of queueing behind each other.
  cpus = max(4, os.cpu_count() or 1)
  memory = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**20 // 2
  conf = root / 'slurm.conf'
  conf.write_text(f"""\
ClusterName=research-tests
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
AuthInfo=cred_expire=5
CredType=cred/none
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=30
MinJobAge=300
SchedulerParameters=sched_interval=2
NodeName=localhost CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
""")
  return conf


def _alive(pidfile: pathlib.Path) -> bool:
  try:
    os.kill(int(pidfile.read_text().split()[0]), 0)
    return True
  except (OSError, ValueError):
    return False


def start(root: pathlib.Path, timeout: float = 60) -> pathlib.Path:
  """Starts the daemons under `root` (if not running) and waits for an idle node."""
  conf = root / 'slurm.conf'
  if not conf.exists():
    write_config(root)
  env = dict(os.environ, SLURM_CONF=str(conf))
  if not _alive(root / 'slurmctld.pid'):
    subprocess.run(['/usr/sbin/slurmctld', '-c', '-i'], env=env, check=True, timeout=60)
  if not _alive(root / 'slurmd.pid'):
    subprocess.run(['/usr/sbin/slurmd', '-N', 'localhost'], env=env, check=True, timeout=60)
  deadline = time.time() + timeout
  state = ''
  while time.time() < deadline:
    result = subprocess.run(['sinfo', '-h', '-N', '-o', '%T'], env=env, capture_output=True,
                            text=True)
    state = result.stdout.strip()
    if state.startswith('idle') or state.startswith('mix') or state.startswith('alloc'):
      return conf
    time.sleep(0.3)
  raise RuntimeError(f'the local SLURM node did not come up (state {state!r}); logs in {root}')


def stop(root: pathlib.Path) -> None:
  """Ends both daemons by their pidfiles (and waits for them)."""
  for name in ('slurmd', 'slurmctld'):
    pidfile = root / f'{name}.pid'
    try:
      pid = int(pidfile.read_text().split()[0])
      os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
      continue
    for _ in range(100):
      try:
        os.kill(pid, 0)
      except OSError:
        break
      time.sleep(0.1)


class Shared:
  """One cluster for every pytest-xdist worker of a session: the first user starts it, the last
  one to leave stops it (a lock file serializes both)."""

  def __init__(self, root: pathlib.Path):
    self.root = root
    root.mkdir(parents=True, exist_ok=True)

  def _locked(self):
    lock = open(self.root / 'lock', 'w')
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock

  def _users(self, delta: int) -> int:
    path = self.root / 'users'
    users = int(path.read_text()) if path.exists() else 0
    users += delta
    path.write_text(str(users))
    return users

  def acquire(self) -> pathlib.Path:
    with self._locked():
      conf = start(self.root)
      self._users(+1)
      return conf

  def release(self) -> None:
    with self._locked():
      if self._users(-1) <= 0:
        stop(self.root)
        for sub in ('state', 'spool'):
          shutil.rmtree(self.root / sub, ignore_errors=True)
        (self.root / 'slurm.conf').unlink(missing_ok=True)


def pytest_fixture():
  """The session fixture's body: yields SLURM_CONF's path, or skips (with the reason) where the
  packages cannot be installed."""
  import pytest  # pylint: disable=g-import-not-at-top
  reason = install()
  if reason:
    pytest.skip(f'no local SLURM cluster: {reason}')
  shared = Shared(fixture_root())
  conf = shared.acquire()
  try:
    yield str(conf)
  finally:
    shared.release()


if __name__ == '__main__':
  command, directory = sys.argv[1], pathlib.Path(sys.argv[2]).resolve()
  if command == 'start':
    reason = install()
    if reason:
      sys.exit(reason)
    print(f'export SLURM_CONF={start(directory)}')
  else:
    stop(directory)


def fixture_root() -> pathlib.Path:
  """One directory per pytest session, the same for its xdist workers (their run id)."""
  key = os.environ.get('PYTEST_XDIST_TESTRUNUID') or f'pid{os.getpid()}'
  return pathlib.Path(os.environ.get('TMPDIR', '/tmp')) / f'research-slurm-{key[:16]}'

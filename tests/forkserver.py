"""`python -m research ARGS` for the tests, forked from a process that has imported it already.

Each CLI process of the suite used to spend ~2 s of CPU importing JAX, Flax, Optax, Orbax, grain
and TFDS before doing anything; the suite starts a few hundred of them on 2 cores. A zygote
process per pytest worker imports those once, without initializing a JAX backend (so no thread
is running and XLA_FLAGS, read when the backend starts, still decides the device count), and
forks a fresh child for every command. The child is a real process running the real entry point
(research/__main__.py, as `python -m research` runs it, with the same argv, cwd, environment and
exit status); only the imports are inherited.

What a fork cannot reproduce falls back to a real `python -m research` subprocess: an
environment that differs from the zygote's in anything but `PER_COMMAND` (JAX, TFDS and others
read theirs at import), and runs the tests signal at chosen moments (they use subprocess.Popen
directly). A run to be signalled once a file appears (`kill_when`, e.g. a checkpoint's commit
marker; `kill_after` seconds later, with `kill_signal`, SIGKILL by default) is forked too: its
supervisor polls the file every 5 ms, then signals the command (a SIGTERM or SIGINT it may
handle: it then waits for its exit).
Set RESEARCH_TEST_FORKSERVER=0 to run every command as a subprocess.

Protocol: one JSON request per connection on a Unix socket ({argv, env, cwd, timeout,
kill_when, kill_after, kill_signal}); the
zygote forks a supervisor for it, which forks the command, waits (killing it at the timeout) and
answers {returncode, stdout, stderr, timed_out}.
"""
import atexit
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# Imported in the zygote; anything else a command needs is imported in its child as usual.
PRELOAD = ('research.cli.commands', 'research.run.train', 'research.api', 'research.sweeps.runner',
           'research.reports.run_report', 'research.reports.sweep_tables')
MAIN = 'research'
# Variables no preloaded module reads at import: a command forked with another value of them gets
# its own (the child's environment is the request's). XLA_FLAGS is read when the backend starts;
# pytest sets PYTEST_CURRENT_TEST to each test's id, so without it every test but a worker's first
# fell back to a subprocess.
PER_COMMAND = ('XLA_FLAGS', 'PYTEST_CURRENT_TEST')


def _send(conn: socket.socket, message: dict) -> None:
  conn.sendall(json.dumps(message).encode() + b'\n')


def _receive(conn: socket.socket) -> dict:
  chunks = []
  while not chunks or not chunks[-1].endswith(b'\n'):
    chunk = conn.recv(1 << 16)
    if not chunk:
      raise ConnectionError('the fork server closed the connection')
    chunks.append(chunk)
  return json.loads(b''.join(chunks))


def _exec_command(request: dict, out_fd: int, err_fd: int) -> None:
  """In the forked child: become `python -m research ARGV` and exit with its status."""
  import runpy  # pylint: disable=import-outside-toplevel
  import traceback  # pylint: disable=import-outside-toplevel
  signal.signal(signal.SIGCHLD, signal.SIG_DFL)
  os.chdir(request['cwd'])
  os.environ.clear()
  os.environ.update(request['env'])
  null = os.open(os.devnull, os.O_RDONLY)
  os.dup2(null, 0)
  os.dup2(out_fd, 1)
  os.dup2(err_fd, 2)
  sys.argv = ['-m', *request['argv']]  # runpy puts the module's path first, as `-m` does.
  sys.path[0] = request['cwd']  # `python -m` puts the working directory first.
  code = 0
  try:
    runpy.run_module(MAIN, run_name='__main__', alter_sys=True)
  except SystemExit as e:
    if e.code is None or isinstance(e.code, int):
      code = e.code or 0
    else:
      print(e.code, file=sys.stderr)
      code = 1
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
    code = 1
  # What interpreter shutdown does: join non-daemon threads, run atexit handlers, flush.
  threading._shutdown()  # pylint: disable=protected-access
  import atexit as atexit_lib  # pylint: disable=import-outside-toplevel
  atexit_lib._run_exitfuncs()  # pylint: disable=protected-access
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except Exception:  # pylint: disable=broad-except
      pass
  os._exit(code)


def _wait(pidfd: int, timeout: float, kill_when: str | None, kill_after: float = 0.0) -> bool:
  """Waits for the child to exit, or for `kill_when` to exist and then `kill_after` seconds more
  (unless it exits first); False when `timeout` ran out."""
  if kill_when is None:
    return bool(select.select([pidfd], [], [], timeout)[0])
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if select.select([pidfd], [], [], 0.005)[0]:
      return True
    if os.path.exists(kill_when):
      select.select([pidfd], [], [], kill_after)
      return True
  return False


def _signal_and_wait(pid: int, pidfd: int, signum: int, timeout: float) -> bool:
  """Sends `signum` to the child (a no-op on one that exited already, not yet reaped); for a
  signal other than SIGKILL, waits up to `timeout` for its exit, then SIGKILLs it (False)."""
  os.kill(pid, signum)
  if signum == signal.SIGKILL or select.select([pidfd], [], [], timeout)[0]:
    return True
  os.kill(pid, signal.SIGKILL)
  return False


def _supervise(conn: socket.socket) -> None:
  """In a forked supervisor: run one request's command and answer with its outcome."""
  signal.signal(signal.SIGCHLD, signal.SIG_DFL)
  request = _receive(conn)
  with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
    pid = os.fork()
    if pid == 0:
      conn.close()
      _exec_command(request, out.fileno(), err.fileno())
    pidfd, start = os.pidfd_open(pid), time.monotonic()
    kill_when = request.get('kill_when')
    timed_out = not _wait(pidfd, request['timeout'], kill_when, request.get('kill_after', 0.0))
    if timed_out:
      os.kill(pid, signal.SIGKILL)
    elif kill_when:
      left = request['timeout'] - (time.monotonic() - start)
      timed_out = not _signal_and_wait(pid, pidfd, request.get('kill_signal', signal.SIGKILL),
                                       max(left, 0.0))
    _, status = os.waitpid(pid, 0)
    out.seek(0)
    err.seek(0)
    _send(conn, {'returncode': os.waitstatus_to_exitcode(status), 'timed_out': timed_out,
                 'stdout': out.read().decode(errors='replace'),
                 'stderr': err.read().decode(errors='replace')})


def _reap(block: bool) -> None:
  """Waits for the zygote's exited supervisors (with `block`, for all of them)."""
  while True:
    try:
      pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
    except ChildProcessError:
      return
    if pid == 0:
      return


def serve(path: str) -> None:
  """The zygote: import, check that nothing runs in the background, then fork per request."""
  import importlib  # pylint: disable=import-outside-toplevel
  for module in PRELOAD:
    importlib.import_module(module)
  from jax._src import xla_bridge  # pylint: disable=import-outside-toplevel
  if threading.active_count() != 1 or xla_bridge.backends_are_initialized():
    raise SystemExit('the preloaded modules started threads or a JAX backend: cannot fork')
  # A library configures the root logger when imported; in `python -m research` the CLI's own
  # logging.basicConfig runs before that import and wins, so undo it here for the same outcome.
  root = logging.getLogger()
  for handler in list(root.handlers):
    root.removeHandler(handler)
  root.setLevel(logging.WARNING)
  # Supervisors are reaped as they exit (not auto-reaped with SIG_IGN, whose children's CPU time
  # is lost), so the zygote's CPU total, and `/usr/bin/time pytest`'s, includes every command;
  # SIGTERM (Zygote.stop) reaps the last ones and exits.
  signal.signal(signal.SIGCHLD, lambda *_: _reap(block=False))
  signal.signal(signal.SIGTERM, lambda *_: (_reap(block=True), os._exit(0)))
  server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
  server.bind(path)
  server.listen(64)
  print('ready', flush=True)
  while True:
    conn, _ = server.accept()
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() == 0:
      signal.signal(signal.SIGTERM, signal.SIG_DFL)  # The zygote's own handlers, not its children's.
      server.close()
      try:
        _supervise(conn)
      finally:
        os._exit(0)
    conn.close()


class Zygote:
  """A started zygote of this (pytest worker) process, and the environment it imported with."""

  def __init__(self, python: str, cwd: str):
    self.directory = tempfile.TemporaryDirectory(prefix='research-zygote-')
    self.path = os.path.join(self.directory.name, 'socket')
    self.env = dict(os.environ)
    self.process = subprocess.Popen([python, __file__, self.path], cwd=cwd, env=self.env,
                                    stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    if self.process.stdout.readline().strip() != 'ready':
      raise RuntimeError('the fork server did not start')
    atexit.register(self.stop)

  def stop(self) -> None:
    self.process.terminate()  # The zygote reaps its supervisors and exits.
    try:
      self.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()
    self.directory.cleanup()

  def run(self, argv: list[str], env: dict, cwd: str, timeout: float,
          kill_when: str | None = None, kill_after: float = 0.0,
          kill_signal: int = signal.SIGKILL) -> subprocess.CompletedProcess:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
      conn.connect(self.path)
      _send(conn, {'argv': argv, 'env': env, 'cwd': cwd, 'timeout': timeout,
                   'kill_when': kill_when, 'kill_after': kill_after,
                   'kill_signal': int(kill_signal)})
      answer = _receive(conn)
    args = [sys.executable, '-m', MAIN, *argv]
    if answer['timed_out']:
      raise subprocess.TimeoutExpired(args, timeout, answer['stdout'], answer['stderr'])
    return subprocess.CompletedProcess(args, answer['returncode'], answer['stdout'],
                                       answer['stderr'])


_ZYGOTES: dict[int, Zygote] = {}  # By process id: each pytest-xdist worker starts its own.


def run(argv: list[str], env: dict, cwd: str, timeout: float, kill_when: str | None = None,
        kill_after: float = 0.0, kill_signal: int = signal.SIGKILL) -> subprocess.CompletedProcess:
  """`python -m research ARGV` with `env` in `cwd`: forked from the zygote where it can be,
  else a subprocess (see the module docstring). With `kill_when`, the command gets `kill_signal`
  `kill_after` seconds after that path exists (returncode -9 for SIGKILL), unless it exited
  first; after another signal it is waited for (SIGKILLed at the timeout)."""
  enabled = os.environ.get('RESEARCH_TEST_FORKSERVER', '1') != '0'
  zygote = _ZYGOTES.get(os.getpid())
  if enabled and zygote is None:
    zygote = _ZYGOTES[os.getpid()] = Zygote(sys.executable, cwd)
  same = zygote is not None and all(
      env.get(k) == zygote.env.get(k) for k in set(env) | set(zygote.env) if k not in PER_COMMAND)
  if enabled and same:
    return zygote.run(argv, env, cwd, timeout, kill_when, kill_after, kill_signal)
  args = [sys.executable, '-m', MAIN, *argv]
  if kill_when is None:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
  with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=err)
    pidfd, start = os.pidfd_open(process.pid), time.monotonic()
    if not _wait(pidfd, timeout, kill_when, kill_after) or not _signal_and_wait(
        process.pid, pidfd, kill_signal, max(timeout - (time.monotonic() - start), 0.0)):
      process.kill()
      process.wait()
      raise subprocess.TimeoutExpired(args, timeout)
    process.wait()
    out.seek(0)
    err.seek(0)
    return subprocess.CompletedProcess(args, process.returncode, out.read().decode(errors='replace'),
                                       err.read().decode(errors='replace'))

if __name__ == '__main__':
  serve(sys.argv[1])

"""What one SLURM array task runs: the same child command as the local launcher, and a requeue
when that child stopped on a signal.

submitit pickles a `SlurmTask` and calls it inside the job (under `srun`). SLURM's signals go to
every process of the step (proctrack/linuxproc), so the child `research train` (or vectorized
group) receives the time-limit warning (`--signal=TERM@N`), a preemption's SIGTERM or `scancel
--signal=TERM` itself: it finishes the current step, writes a checkpoint and exits 143. This
process only records that a signal came (it never forwards one: the child would see it twice
and exit at once) and waits for the child. If the job is still RUNNING, the signal was a warning
(the time limit, `scancel --signal=TERM`) and this process requeues the job with `scontrol
requeue`; the requeued job runs the same command, which resumes from the checkpoint exactly.
Otherwise SLURM is ending the job: a preemption with PreemptMode=REQUEUE (or `scontrol requeue`)
requeues it by itself, and a cancelled job (`scancel`) stays cancelled until a rerun of
`research sweep` resubmits it.
"""
import dataclasses
import os
import signal
import subprocess
import time

PREEMPTED_EXIT = 128 + signal.SIGTERM


@dataclasses.dataclass
class SlurmTask:
  """A sweep task's command, run inside an array task; log appended to `log`."""
  title: str
  command: list[str]
  env: dict[str, str] | None
  log: str

  def __call__(self) -> int:
    signals = []
    for signum in (signal.SIGTERM, signal.SIGUSR2, signal.SIGCONT):
      signal.signal(signum, lambda s, f: signals.append(s))
    os.makedirs(os.path.dirname(self.log), exist_ok=True)
    job = job_id()
    with open(self.log, 'a') as log:
      log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} SLURM job {job}: "
                f"{' '.join(self.command)}\n")
      log.flush()
      process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=self.env)
      code = process.wait()
    if code == PREEMPTED_EXIT or (code != 0 and signal.SIGTERM in signals):
      state = _state(job)
      if state == 'RUNNING':  # A warning (time limit, scancel --signal): the job goes on.
        requeue = subprocess.run(['scontrol', 'requeue', job], capture_output=True, text=True)
        note = (f"scontrol requeue {job}: "
                f"{'ok' if requeue.returncode == 0 else requeue.stderr.strip()}")
      else:  # Cancelled (a rerun of the sweep resubmits it), or requeued by SLURM itself.
        note = f'job {job} is {state or "gone"}: SLURM ends or requeues it; not requeued here'
      with open(self.log, 'a') as log:
        log.write(f"# stopped by a signal (exit {code}); {note}\n")
      return code
    if code != 0:
      raise RuntimeError(f'{self.title}: exit {code}; log {self.log}')
    return code


def _state(job: str) -> str:
  result = subprocess.run(['squeue', '-h', '-j', job, '-o', '%T'], capture_output=True, text=True)
  return result.stdout.strip()


def job_id() -> str:
  """This array task's id as squeue and scontrol name it (123_4), or the plain job id."""
  array, index = os.environ.get('SLURM_ARRAY_JOB_ID'), os.environ.get('SLURM_ARRAY_TASK_ID')
  return f'{array}_{index}' if array and index else os.environ.get('SLURM_JOB_ID', '')

"""The `research` command's arguments: the parser, checks of single values (before JAX is
imported, so that a typo costs no start-up time), and `--config.a.b=V` overrides."""
import argparse
import importlib.metadata
import math
from typing import Sequence

from research.cli import listing
from research.devices import multihost
from research.errors import UserError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
  """argparse that reports a usage error in one line."""

  def error(self, message: str):
    self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _workdir(value: str) -> str:
  """A workdir: an empty or blank path (an unset shell variable) would mean the current one."""
  if not value.strip():
    raise argparse.ArgumentTypeError(f"must name a directory, got {value!r} (an unset variable?)")
  return value


def _number(parse, allowed: str, within):
  """An argparse type: `parse(value)` when it parses and `within(number)`; else what is allowed."""
  def check(value: str):
    try:
      number = parse(value)
    except ValueError:
      raise argparse.ArgumentTypeError(f"must be {allowed}, got {value!r}") from None
    if not within(number):
      raise argparse.ArgumentTypeError(f"must be {allowed}, got {number}")
    return number
  return check


_positive_int = _number(int, 'an integer >= 1', lambda n: n >= 1)
_temperature = _number(float, 'a finite number >= 0 (0: greedy)',
                       lambda n: math.isfinite(n) and n >= 0)
_noise = _number(float, 'a finite number > 0', lambda n: math.isfinite(n) and n > 0)


def _version() -> str:
  try:
    return importlib.metadata.version('research')
  except importlib.metadata.PackageNotFoundError:
    return 'unknown (not installed)'


def parser(description: str) -> argparse.ArgumentParser:
  """The parser of `research ...`; `description` heads its --help."""
  parser = _Parser(prog='research', description=description)
  parser.add_argument('--verbose', action='store_true', help='show tracebacks and debug logs')
  parser.add_argument('--version', action='version', version=f'research {_version()}')
  commands = parser.add_subparsers(dest='command', required=True, parser_class=_Parser)
  train = commands.add_parser(
      'train', help='train a config in a workdir (resumes if it has checkpoints)',
      epilog='Override any config field with --config.a.b=VALUE (Python literal or string).')
  train.add_argument('--config', required=True, metavar='FILE.py[:ARG]',
                     help='a config file defining get_config() (or get_config(arg))')
  train.add_argument('--workdir', required=True, type=_workdir,
                     help='directory for checkpoints and metrics')
  train.add_argument('--dry-run', action='store_true',
                     help='print the resolved config as JSON and exit; no workdir is created')
  train.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)
  multihost.add_arguments(train)
  evaluate = commands.add_parser('eval', help="evaluate a workdir's newest checkpoint")
  evaluate.add_argument('--workdir', required=True, type=_workdir)
  evaluate.add_argument('--split', default='test', help='train | validation | test')
  evaluate.add_argument('--step', type=int, default=None, help='a checkpoint step (newest)')
  evaluate.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)
  sample = commands.add_parser('generate', help="continue prompts with a workdir's language model")
  sample.add_argument('--workdir', required=True, type=_workdir)
  sample.add_argument('--prompt', action='append', required=True,
                      help='text to continue (repeat for a batch)')
  sample.add_argument('--max-new-tokens', type=_positive_int, default=None,
                      help="default: up to the model's sequence length")
  sample.add_argument('--temperature', type=_temperature, default=0.0, help='0: greedy')
  sample.add_argument('--top-k', type=_positive_int, default=None)
  sample.add_argument('--seed', type=int, default=0)
  sample.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)
  _transcribe_arguments(commands)
  sweep = commands.add_parser(
      'sweep', help="run every point of an experiment file (resumes; skips finished runs)")
  sweep.add_argument('experiment', help='an experiment file defining get_sweep()')
  sweep.add_argument('--workdir', required=True, type=_workdir,
                     help='one sub-directory per run goes here')
  sweep.add_argument('--jobs', type=_positive_int, default=1, help='runs side by side (default 1)')
  sweep.add_argument('--dry-run', action='store_true', help='list the runs, run nothing')
  sweep.add_argument('--no-vectorize', dest='vectorize', action='store_false',
                     help='train every seed in its own process instead of one vmapped program')
  sweep.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)
  _slurm_arguments(sweep)
  _explain_arguments(commands)
  report = commands.add_parser(
      'report', help="tables and plots of a sweep directory, or a single run's report")
  report.add_argument('workdir', type=_workdir, help='a sweep --workdir, or a train --workdir')
  report.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)
  lister = commands.add_parser(
      'list', help='shipped configs, models, datasets, losses, optimizers, tasks, config keys')
  lister.add_argument('kind', nargs='?', choices=listing.KINDS, help='what to list (default: all)')
  lister.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)
  return parser


def _key_value(value: str) -> tuple[str, str]:
  key, sep, rest = value.partition('=')
  if not sep or not key.strip():
    raise argparse.ArgumentTypeError(f"must be KEY=VALUE (an sbatch option), got {value!r}")
  return key.strip().lstrip('-'), rest


def _slurm_arguments(sweep) -> None:
  """`--launcher slurm` and its settings (they override the experiment file's `slurm` dict)."""
  sweep.add_argument('--launcher', choices=('local', 'slurm'), default='local',
                     help='local child processes (default) or a SLURM job array (submitit)')
  sweep.add_argument('--wait', action='store_true',
                     help='slurm: poll the queue until every run finished or failed')
  group = sweep.add_argument_group('slurm', 'settings of --launcher slurm (see README)')
  group.add_argument('--partition')
  group.add_argument('--time', type=_positive_int, help='time limit per task, minutes')
  group.add_argument('--cpus-per-task', type=_positive_int)
  group.add_argument('--gpus-per-task', type=_positive_int)
  group.add_argument('--mem', help="memory per task, e.g. 8G")
  group.add_argument('--array-parallelism', type=_positive_int, help='array tasks at once')
  group.add_argument('--signal-seconds', type=_positive_int,
                     help='SIGTERM this long before the time limit (default 120)')
  group.add_argument('--sbatch', type=_key_value, action='append', metavar='KEY=VALUE',
                     help='any other sbatch option, e.g. --sbatch qos=low (repeatable)')
  group.add_argument('--setup', action='append', metavar='LINE',
                     help='a shell line run before each task, e.g. "module load cuda"')


def slurm_flags(args: argparse.Namespace) -> dict:
  """The SLURM settings given as flags (None where not given)."""
  return {'partition': args.partition, 'time': args.time, 'cpus_per_task': args.cpus_per_task,
          'gpus_per_task': args.gpus_per_task, 'mem': args.mem,
          'array_parallelism': args.array_parallelism, 'signal_seconds': args.signal_seconds,
          'sbatch': dict(args.sbatch or ()), 'setup': list(args.setup or ())}


def _transcribe_arguments(commands) -> None:
  speech = commands.add_parser(
      'transcribe', help="transcribe a WAV file with a speech model (task ctc), or measure "
                         "greedy against beam search with the LM on its test split")
  speech.add_argument('--workdir', required=True, type=_workdir)
  speech.add_argument('--audio', metavar='FILE.wav', help='a PCM WAV file to transcribe')
  speech.add_argument('--decoder', choices=('beam', 'greedy'), default='beam',
                      help='beam: beam search with the character LM of the training transcripts')
  speech.add_argument('--evaluate', action='store_true',
                      help='instead of --audio: CER/WER of greedy and beam decoding on the test '
                           'split (LM weights tuned on validation), written to DIR/speech/')
  speech.add_argument('--step', type=int, default=None, help='a checkpoint step (newest)')
  speech.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)


def _explain_arguments(commands) -> None:
  explain = commands.add_parser(
      'explain', help="attributions, attention maps, activation statistics and robustness of a "
      "finished run (writes DIR/explain/)",
      epilog='Methods: saliency, smoothgrad, integrated_gradients, occlusion, attention, '
      'activations (default: every one that applies to the model).')
  explain.add_argument('--workdir', required=True, type=_workdir, help="a finished run's workdir")
  explain.add_argument('--split', default='test', help='train | validation | test')
  explain.add_argument('--examples', type=_positive_int, default=8,
                       help='examples to explain, the first of the split (default 8)')
  explain.add_argument('--method', action='append', default=None,
                       help='a method, or several comma-separated (repeatable)')
  explain.add_argument('--baseline', choices=('zeros', 'mean'), default='zeros',
                       help='reference input of integrated gradients and occlusion')
  explain.add_argument('--ig-steps', type=_positive_int, default=32,
                       help='integrated gradients: points of the path integral (default 32)')
  explain.add_argument('--smoothgrad-samples', type=_positive_int, default=16)
  explain.add_argument('--smoothgrad-noise', type=_noise, default=0.15,
                       help="noise std as a fraction of each example's value range")
  explain.add_argument('--occlusion-window', type=_positive_int, default=None,
                       help='positions per window side (default: an eighth of each dimension)')
  explain.add_argument('--robustness', action='store_true',
                       help='accuracy under noise, occlusion, FGSM and PGD (classification)')
  explain.add_argument('--robustness-examples', type=_positive_int, default=500,
                       help='examples the robustness curves are measured on (default 500)')
  explain.add_argument('--step', type=int, default=None, help='a checkpoint step (newest)')
  explain.add_argument('--seed', type=int, default=0)
  explain.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)


def split_overrides(extra: Sequence[str]) -> list[str]:
  """Collects `--config.a.b=V` and `--config.a.b V` into 'a.b=V' strings."""
  overrides, i = [], 0
  while i < len(extra):
    arg = extra[i]
    if not arg.startswith('--config.'):
      raise UserError(f"unrecognized argument {arg!r}; overrides look like --config.a.b=VALUE")
    body = arg[len('--config.'):]
    if '=' not in body:
      if i + 1 >= len(extra):
        raise UserError(f"override {arg} needs a value: {arg}=VALUE")
      body, i = f'{body}={extra[i + 1]}', i + 1
    overrides.append(body)
    i += 1
  return overrides

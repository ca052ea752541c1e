"""The `research` command.

    research train --config configs/X.py[:arg] [--config.a.b=V ...] --workdir DIR
    research eval  --workdir DIR [--split test]
    research generate --workdir DIR --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-k K]
    research sweep experiments/X.py --workdir DIR [--jobs N] [--dry-run] [--no-vectorize]
    research report DIR     (a sweep's tables and plots, or one run's report)

Exit codes: 0 success; 2 bad usage, config or input (one line on stderr, no traceback);
1 a failure during the run (the traceback is shown with --verbose); 143 / 130 stopped by SIGTERM /
SIGINT after writing a checkpoint (rerun the same command to resume).
"""
import argparse
import json
import logging
import pathlib
import sys
from typing import Sequence

from research import distributed, preemption
from research.errors import UserError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
log = logging.getLogger('research')


class _Parser(argparse.ArgumentParser):
  """argparse that reports a usage error in one line."""

  def error(self, message: str):
    self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
  parser = _Parser(prog='research', description=__doc__.split('\n\n')[0])
  parser.add_argument('--verbose', action='store_true', help='show tracebacks and debug logs')
  commands = parser.add_subparsers(dest='command', required=True, parser_class=_Parser)
  train = commands.add_parser(
      'train', help='train a config in a workdir (resumes if it has checkpoints)',
      epilog='Override any config field with --config.a.b=VALUE (Python literal or string).')
  train.add_argument('--config', required=True, metavar='FILE.py[:ARG]',
                     help='a config file defining get_config(arg=None)')
  train.add_argument('--workdir', required=True, help='directory for checkpoints and metrics')
  train.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)
  distributed.add_arguments(train)
  evaluate = commands.add_parser('eval', help="evaluate a workdir's newest checkpoint")
  evaluate.add_argument('--workdir', required=True)
  evaluate.add_argument('--split', default='test', help='train | validation | test')
  evaluate.add_argument('--step', type=int, default=None, help='a checkpoint step (newest)')
  evaluate.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)
  sample = commands.add_parser('generate', help="continue prompts with a workdir's language model")
  sample.add_argument('--workdir', required=True)
  sample.add_argument('--prompt', action='append', required=True,
                      help='text to continue (repeat for a batch)')
  sample.add_argument('--max-new-tokens', type=int, default=None,
                      help="default: up to the model's sequence length")
  sample.add_argument('--temperature', type=float, default=0.0, help='0: greedy')
  sample.add_argument('--top-k', type=int, default=None)
  sample.add_argument('--seed', type=int, default=0)
  sample.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)
  sweep = commands.add_parser(
      'sweep', help="run every point of an experiment file (resumes; skips finished runs)")
  sweep.add_argument('experiment', help='an experiment file defining get_sweep()')
  sweep.add_argument('--workdir', required=True, help='one sub-directory per run goes here')
  sweep.add_argument('--jobs', type=int, default=1, help='runs side by side (default 1)')
  sweep.add_argument('--dry-run', action='store_true', help='list the runs, run nothing')
  sweep.add_argument('--no-vectorize', dest='vectorize', action='store_false',
                     help='train every seed in its own process instead of one vmapped program')
  sweep.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)
  report = commands.add_parser(
      'report', help="tables and plots of a sweep directory, or a single run's report")
  report.add_argument('workdir', help='a sweep --workdir, or a train --workdir')
  report.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS)
  return parser


def _split_overrides(extra: Sequence[str]) -> list[str]:
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


def _setup_logging(verbose: bool) -> None:
  logging.basicConfig(
      level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
      format='%(asctime)s %(levelname).1s %(name)s] %(message)s', datefmt='%H:%M:%S')
  if not verbose:  # Orbax and grain log every save and restore through absl at INFO.
    for noisy in ('absl', 'orbax', 'jax', 'grain'):
      logging.getLogger(noisy).setLevel(logging.WARNING)
    # 'Future exception was never retrieved' from Orbax's event loops after a failed restore.
    logging.getLogger('asyncio').setLevel(logging.CRITICAL)
    for handler in logging.getLogger().handlers:
      handler.addFilter(_OneLineFromLibraries())
    sys.unraisablehook = _quiet_unraisable


def _quiet_unraisable(unraisable) -> None:
  """Without --verbose: after a failed background save, tensorstore's callbacks hit the event
  loop Orbax already closed ('Event loop is closed'); that says nothing the run's own error
  does not, so it is dropped. Anything else is one line."""
  error = unraisable.exc_value
  if isinstance(error, RuntimeError) and str(error) == 'Event loop is closed':
    return
  print(f"research: ignored in a library callback: {type(error).__name__}: {error}",
        file=sys.stderr)


class _OneLineFromLibraries(logging.Filter):
  """Without --verbose, a library's error log is one line, not a traceback wall (Orbax logs
  a failed background save from every thread involved; the run's own error says what to do)."""

  def filter(self, record: logging.LogRecord) -> bool:
    if not record.name.startswith('research'):
      message = record.getMessage().splitlines()
      record.msg, record.args = (message[0][:300] if message else ''), None
      record.exc_info = record.exc_text = record.stack_info = None
    return True


def _train(args, extra) -> int:
  from research import config as config_lib
  from research import progress, run_metadata, train
  overrides = _split_overrides(extra)
  config = config_lib.load(args.config)
  config_lib.apply_overrides(config, overrides)
  distributed.initialize(args)  # Multi-process runs only; before any JAX computation.
  source = run_metadata.ConfigSource.from_spec(  # run.json: a report reads, never imports.
      args.config, overrides, defaults=config_lib.load(args.config), requested=config)
  progress.quiet_library_bars()  # Clean log files: no dataset-preparation bars off a terminal.
  summary = train.train_and_evaluate(config, args.workdir, source=source)
  test = summary['final']['test']
  print(json.dumps({'workdir': args.workdir, 'steps': summary['steps'],
                    'test_accuracy': round(test['accuracy'], 4),
                    'test_loss': round(test['loss'], 4)}))
  return EXIT_OK


def _eval(args, extra) -> int:
  if extra:
    raise UserError(f"unrecognized arguments for eval: {' '.join(extra)}")
  from research import restore
  print(json.dumps(restore.evaluate_workdir(args.workdir, args.split, args.step)))
  return EXIT_OK


def _generate(args, extra) -> int:
  if extra:
    raise UserError(f"unrecognized arguments for generate: {' '.join(extra)}")
  from research import restore
  for prompt, text in zip(args.prompt, restore.generate_text(
      args.workdir, args.prompt, max_new_tokens=args.max_new_tokens,
      temperature=args.temperature, top_k=args.top_k, seed=args.seed)):
    print(json.dumps({'prompt': prompt, 'text': text}))
  return EXIT_OK


def _sweep(args, extra) -> int:
  if extra:
    raise UserError(f"unrecognized arguments for sweep: {' '.join(extra)}")
  from research import sweep_runner
  return sweep_runner.run_sweep(args.experiment, args.workdir, jobs=args.jobs,
                                dry_run=args.dry_run, vectorize=args.vectorize)


def _report(args, extra) -> int:
  if extra:
    raise UserError(f"unrecognized arguments for report: {' '.join(extra)}")
  path = pathlib.Path(args.workdir)
  if (path / 'sweep.json').is_file():
    from research import sweep_report
    text, paths = sweep_report.write_report(path)
    print(text)
  elif (path / 'config.json').is_file():
    from research import run_report
    paths = run_report.write_run_report(str(path))
  else:
    raise UserError(f"{str(path)!r} is neither a sweep directory (sweep.json) nor a run's "
                    "workdir (config.json)")
  for written in paths:
    print(f'wrote {written}')
  return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  args, extra = _parser().parse_known_args(argv)
  _setup_logging(args.verbose)
  command = {'train': _train, 'eval': _eval, 'generate': _generate, 'sweep': _sweep,
             'report': _report}[args.command]
  try:
    return command(args, extra)
  except UserError as e:
    if args.verbose:
      log.exception('bad input')
    print(f"research {args.command}: error: {e}", file=sys.stderr)
    return EXIT_USAGE
  except preemption.Preempted as e:
    print(f"research {args.command}: {e}", file=sys.stderr)
    return e.exit_code
  except KeyboardInterrupt:
    print(f"research {args.command}: interrupted", file=sys.stderr)
    return EXIT_FAILURE
  except Exception as e:  # A failure during the run: say what, keep the wall for --verbose.
    if args.verbose:
      log.exception('run failed')
    print(f"research {args.command}: failed: {type(e).__name__}: {e} "
          f"(rerun with --verbose for the traceback)", file=sys.stderr)
    return EXIT_FAILURE

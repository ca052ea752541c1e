"""The `research` command.

    research train --config configs/X.py[:arg] [--config.a.b=V ...] --workdir DIR
    research eval  --workdir DIR [--split test]
    research generate --workdir DIR --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-k K]
    research transcribe --workdir DIR (--audio FILE.wav [--decoder beam|greedy] | --evaluate)
    research sweep experiments/X.py --workdir DIR [--jobs N] [--dry-run] [--no-vectorize]
                   [--launcher local|slurm [--wait] [--partition P --time MIN ...]]
    research explain --workdir DIR [--split test] [--examples N] [--method M,...] [--robustness]
    research report DIR     (a sweep's tables and plots, or one run's report)
    research list [configs|models|datasets|losses|optimizers|tasks|keys]
    research --version;  research train ... --dry-run  (print the resolved config, run nothing)

Exit codes: 0 success; 2 bad usage, config or input (one line on stderr, no traceback);
1 a failure during the run (the traceback is shown with --verbose); 143 / 130 stopped by SIGTERM /
SIGINT after writing a checkpoint (rerun the same command to resume).
"""
import contextlib
import copy
import json
import logging
import pathlib
import signal
import sys
from typing import Sequence

from research.cli import arguments, listing
from research.devices import multihost
from research.errors import UserError
from research.run import compile_cache, preemption
from research.rundir import layout

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, arguments.EXIT_USAGE
log = logging.getLogger('research')


def _setup_logging(verbose: bool) -> None:
  logging.basicConfig(
      level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
      format='%(asctime)s %(levelname).1s %(name)s] %(message)s', datefmt='%H:%M:%S')
  if not verbose:  # Orbax and grain log every save and restore through absl at INFO.
    for noisy in ('absl', 'orbax', 'jax', 'grain'):
      logging.getLogger(noisy).setLevel(logging.WARNING)
    # 'Future exception was never retrieved' from Orbax's event loops after a failed api.
    logging.getLogger('asyncio').setLevel(logging.CRITICAL)
    for handler in logging.getLogger().handlers:
      handler.addFilter(_OneLineFromLibraries())
    logging.getLogger('absl').addFilter(_FirstPreparation())
    sys.unraisablehook = _quiet_unraisable


def _quiet_unraisable(unraisable) -> None:
  """Without --verbose: after a failed background save, tensorstore's callbacks hit the event
  loop Orbax already closed ('Event loop is closed'); that says nothing the run's own error
  does not, so it is dropped; so is a failed restore's leftover tensorstore read (the step's own
  error was reported). Anything else is one line."""
  error = unraisable.exc_value
  if isinstance(error, RuntimeError) and str(error) == 'Event loop is closed':
    return
  if 'Encountered error while reading array index' in str(error):
    return  # A failed restore's leftover read: the checkpoint's own error was already reported.
  first = (str(error).splitlines() or [''])[0][:300]
  print(f"research: ignored in a library callback: {type(error).__name__}: {first}",
        file=sys.stderr)


class _FirstPreparation(logging.Filter):
  """Without --verbose: before preparing a dataset TFDS looks for a prepared copy and warns about
  the version folder it is about to fill ('Variant folder .../digits/1.0.0 has no
  dataset_info.json'). On a dataset's first use that is expected, not an error: dropped."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith('Variant folder %s has no')


class _OneLineFromLibraries(logging.Filter):
  """Without --verbose, a library's error log is one line, not a traceback wall (Orbax logs
  a failed background save from every thread involved; the run's own error says what to do)."""

  def filter(self, record: logging.LogRecord) -> bool:
    if not record.name.startswith('research'):
      message = record.getMessage().splitlines()
      record.msg, record.args = (message[0][:300] if message else ''), None
      record.exc_info = record.exc_text = record.stack_info = None
    return True


def _no_extra_arguments(command: str, extra: list[str]) -> None:
  """Only `train` takes --config.a.b=V overrides; any other leftover argument is a usage error."""
  if extra:
    raise UserError(f"unrecognized arguments for {command}: {' '.join(extra)}")


def _train(args, extra, stop_request: preemption.StopRequest) -> int:
  overrides = arguments.split_overrides(extra)  # Before importing JAX: a typo fails at once.
  from research import config as config_lib
  from research.run import train
  from research.rundir import provenance
  defaults = config_lib.load(args.config)  # The file's own config, before the overrides.
  config = copy.deepcopy(defaults)
  config_lib.apply_overrides(config, overrides)
  if args.dry_run:
    return _dry_run(config)
  multihost.initialize(args)  # Multi-process runs only; before any JAX computation.
  source = provenance.ConfigSource.from_spec(  # run.json: a report reads, never imports.
      args.config, overrides, defaults=defaults, requested=config)
  with _library_output_to_stderr():  # Clean logs; stdout keeps only the result line.
    summary = train.train_and_evaluate(config, args.workdir, source=source,
                                       stop_request=stop_request)
  test = summary['final']['test']
  # The headline test metrics of the task: accuracy (classes, tokens), rmse and r2 (regression),
  # or an agent's greedy return.
  print(json.dumps({'workdir': args.workdir, 'steps': summary['steps'],
                    **{f'test_{name}': round(test[name], 4) for name in RESULT_METRICS
                       if isinstance(test.get(name), float)}}))
  return EXIT_OK


RESULT_METRICS = ('accuracy', 'rmse', 'r2', 'loss', 'return', 'return_std')


def _dry_run(config) -> int:
  """`train --dry-run`: validates and resolves the config as a run would (preparing its dataset,
  whose size the step counts need), prints it as config.json would hold it, creates nothing."""
  from research import config as config_lib
  from research.run import agent_parts, parts, profiling
  with _library_output_to_stderr():
    if config_lib.is_agent(config):  # An agent: no dataset, its own checks.
      print(config_lib.to_json(agent_parts.build(config).config))
      return EXIT_OK
    exp = parts.build(config)
    exp.devices.check_batch(exp.eval_batch_size, 'config.eval_batch_size')
    profiling.steps_to_trace(exp.config)  # Checks profile_steps against total_steps.
  print(config_lib.to_json(exp.config))
  return EXIT_OK


@contextlib.contextmanager
def _library_output_to_stderr():
  """Keeps stdout for the command's JSON: TFDS announces a dataset it prepares with print(),
  and draws progress bars (turned off here off a terminal: they write control characters)."""
  from research.run import progress  # pylint: disable=g-import-not-at-top
  progress.quiet_library_bars()
  with contextlib.redirect_stdout(sys.stderr):
    yield


def _eval(args, extra) -> int:
  _no_extra_arguments('eval', extra)
  from research import api
  with _library_output_to_stderr():
    result = api.evaluate_workdir(args.workdir, args.split, args.step)
  print(json.dumps(result))
  return EXIT_OK


def _generate(args, extra) -> int:
  _no_extra_arguments('generate', extra)
  from research import api
  with _library_output_to_stderr():
    texts = api.generate_text(
        args.workdir, args.prompt, max_new_tokens=args.max_new_tokens,
        temperature=args.temperature, top_k=args.top_k, seed=args.seed)
  for prompt, text in zip(args.prompt, texts):
    print(json.dumps({'prompt': prompt, 'text': text}))
  return EXIT_OK


def _transcribe(args, extra) -> int:
  _no_extra_arguments('transcribe', extra)
  if bool(args.audio) == bool(args.evaluate):
    raise UserError('transcribe needs exactly one of --audio FILE.wav and --evaluate')
  from research.speech import decoding, evaluate, wav
  with _library_output_to_stderr():
    if args.evaluate:
      result = evaluate.evaluate_workdir(args.workdir, args.step)
    else:
      waveform = wav.read(args.audio, decoding.recorded_sample_rate(args.workdir))
      recognizer = decoding.Recognizer.load(args.workdir, args.step)
      result = {'audio': args.audio, 'decoder': args.decoder,
                'text': recognizer.transcribe(waveform, args.decoder)}
  print(json.dumps(result))
  return EXIT_OK


def _explain(args, extra) -> int:
  _no_extra_arguments('explain', extra)
  from research.explain import methods
  requested = methods.parse(args.method)  # Before importing JAX: a typo fails at once.
  from research.explain import compute, workdir
  options = compute.Options(
      baseline=args.baseline, ig_steps=args.ig_steps, smoothgrad_samples=args.smoothgrad_samples,
      smoothgrad_noise=args.smoothgrad_noise, occlusion_window=args.occlusion_window,
      robustness=args.robustness, seed=args.seed)
  with _library_output_to_stderr():
    _, paths = workdir.explain_workdir(
        args.workdir, split=args.split, examples=args.examples, methods=requested,
        step=args.step, options=options, robustness_examples=args.robustness_examples)
  for written in paths:
    print(f'wrote {written}')
  return EXIT_OK


def _sweep(args, extra) -> int:
  _no_extra_arguments('sweep', extra)
  from research.run import progress
  from research.sweeps import runner
  progress.quiet_library_bars()  # Vectorized groups prepare datasets in this process.
  return runner.run_sweep(args.experiment, args.workdir, jobs=args.jobs,
                         dry_run=args.dry_run, vectorize=args.vectorize, launcher=args.launcher,
                         slurm_flags=arguments.slurm_flags(args), wait=args.wait)


def _report(args, extra) -> int:
  _no_extra_arguments('report', extra)
  path = pathlib.Path(args.workdir)
  if (path / 'search.json').is_file():  # A hyper-parameter search (research/sweeps/search.py).
    from research.reports import search_report
    text, paths = search_report.write_report(path)
    print(text)
  elif (path / layout.SWEEP).is_file():
    from research.reports import sweep_tables
    text, paths = sweep_tables.write_report(path)
    print(text)
  elif layout.is_run(path):
    from research.reports import run_report
    paths = run_report.write_run_report(str(path))
  else:
    raise UserError(f"{str(path)!r} is neither a sweep directory (sweep.json) nor a run's "
                    "workdir (config.json)")
  for written in paths:
    print(f'wrote {written}')
  return EXIT_OK


def _list(args, extra) -> int:
  _no_extra_arguments('list', extra)
  kinds = [args.kind] if args.kind else listing.KINDS
  for kind in kinds:
    if len(kinds) > 1:
      print(f'{kind}:')
    for line in listing.lines(kind):
      print(f'  {line}' if len(kinds) > 1 else line)
  return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  args, extra = arguments.parser(__doc__.split('\n\n')[0]).parse_known_args(argv)
  _setup_logging(args.verbose)
  if args.command in ('train', 'eval', 'generate', 'explain', 'transcribe'):
    compile_cache.enable()
  command = {'train': _train, 'eval': _eval, 'generate': _generate, 'explain': _explain,
             'transcribe': _transcribe,
             'sweep': _sweep, 'report': _report, 'list': _list}[args.command]
  # Signals are honoured from here to exit (research/run/preemption.py): `train` records them and
  # stops at a safe point with the documented exit code; eval and generate, which write
  # nothing, exit at once; sweep forwards them to its runs.
  if args.command == 'train':
    guard = preemption.stop_on_signals()
  elif args.command in ('eval', 'generate', 'explain', 'transcribe'):
    guard = preemption.exit_on_signals(args.command)
  else:
    guard = contextlib.nullcontext()
  try:
    with guard as stop_request:
      if args.command == 'train':
        return command(args, extra, stop_request)
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
    return 128 + signal.SIGINT
  except Exception as e:  # A failure during the run: say what, keep the wall for --verbose.
    if args.verbose:
      log.exception('run failed')
    print(f"research {args.command}: failed: {type(e).__name__}: {e} "
          f"(rerun with --verbose for the traceback)", file=sys.stderr)
    return EXIT_FAILURE

"""K seeds of the MNIST-1D baselines: K sequential `research train` runs against one group.

Command (from the repo root; asserts nothing about speed):

  .venv/bin/python benchmarks/vectorized_seeds.py [--steps 500] [--seeds 5] [--models mlp,cnn,gru]
      [--modes vmap,unroll] [--data-dir DIR] [--json PATH]

For each model (configs/mnist1d_{mlp,cnn,gru}.py, the paper's recipe: Adam 1e-2, batch 100) and
seeds 0..K-1, with `--steps` steps, one evaluation and one checkpoint at the end, on one device:
  sequential  K calls of research.train_and_evaluate, one after the other, in one process.
  vmap        one call of research.run.vectorized.train_vectorized with the same K configs
              (config.vectorize_mode='vmap': the members batched by jax.vmap).
  unroll      the same with vectorize_mode='unroll' (K copies of a run's step in one program).
One row per model and mode. Columns: the wall seconds of all K runs (everything: building,
compiling, training, evaluating, checkpointing, writing workdirs) both ways and their ratio;
model-steps/s while training (compile, eval and checkpoints excluded): for sequential runs the
mean of the K runs' summary.json `steps_per_second` (they take turns, so the machine advances
one model at that rate), for a group K x its `steps_per_second`; their ratio; and the mean test
accuracy both ways (unroll: identical; vmap: equal up to float rounding, which lr-1e-2 Adam can
amplify over hundreds of steps). A warm-up run first loads the libraries and the data.
TFDS data_dir: --data-dir, else $TFDS_DATA_DIR, else a temporary folder (MNIST-1D is then
generated, a few seconds).
"""
import argparse
import json
import logging
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

import jax

import research
from research import config as config_lib
from research.run import vectorized

REPO = pathlib.Path(__file__).resolve().parent.parent
MODELS = ('mlp', 'cnn', 'gru')


def member_config(model: str, seed: int, steps: int, data_dir: str, mode: str = 'vmap'):
  config = config_lib.load(str(REPO / 'configs' / f'mnist1d_{model}.py'))
  config_lib.apply_overrides(config, [
      f'seed={seed}', f'total_steps={steps}', f'eval_every={steps}', f'checkpoint_every={steps}',
      'num_devices=1', 'log_every=100', f'vectorize_mode={mode!r}'])
  config.dataset.data_dir = data_dir
  return config


def bench_model(model: str, seeds: int, steps: int, modes: list[str], data_dir: str,
                root: pathlib.Path) -> list[dict]:
  """One row per vectorize mode, each against the same K sequential runs."""
  research.train_and_evaluate(member_config(model, 99, 20, data_dir), str(root / 'warm-up'))
  tic = time.perf_counter()
  alone = [research.train_and_evaluate(member_config(model, s, steps, data_dir),
                                       str(root / f'seq-{s}')) for s in range(seeds)]
  sequential_wall = time.perf_counter() - tic
  accuracy = lambda runs: statistics.mean(s['final']['test']['accuracy'] for s in runs)
  rows = []
  for mode in modes:
    configs = [member_config(model, s, steps, data_dir, mode) for s in range(seeds)]
    tic = time.perf_counter()
    group = vectorized.train_vectorized(
        configs, [str(root / f'{mode}-{s}') for s in range(seeds)], str(root / f'{mode}-group'))
    rows.append(dict(
        model=model, mode=mode, seeds=seeds, steps=steps, sequential_wall=sequential_wall,
        vectorized_wall=time.perf_counter() - tic,
        sequential_model_steps_per_second=statistics.mean(s['steps_per_second'] for s in alone),
        vectorized_model_steps_per_second=seeds * group[0]['steps_per_second'],
        sequential_test_accuracy=accuracy(alone), vectorized_test_accuracy=accuracy(group)))
  return rows


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--steps', type=int, default=500, help='training steps of every run')
  parser.add_argument('--seeds', type=int, default=5, help='K: runs per model')
  parser.add_argument('--models', default=','.join(MODELS), help='comma-separated subset of '
                      + ', '.join(MODELS))
  parser.add_argument('--modes', default='vmap,unroll',
                      help='comma-separated config.vectorize_mode values to time')
  parser.add_argument('--data-dir', default=None, help='TFDS data_dir (default: $TFDS_DATA_DIR '
                      'or a temporary folder)')
  parser.add_argument('--json', default=None, metavar='PATH', help='also write results as JSON')
  args = parser.parse_args(argv)
  logging.getLogger('absl').setLevel(logging.ERROR)
  logging.getLogger('research').setLevel(logging.WARNING)
  models = [m for m in args.models.split(',') if m]
  modes = [m for m in args.modes.split(',') if m]
  if not set(models) <= set(MODELS) or not set(modes) <= set(config_lib.VECTORIZE_MODES) or (
      args.seeds < 1 or args.steps < 2):
    parser.error(f'--models must name some of {MODELS}, --modes some of '
                 f'{config_lib.VECTORIZE_MODES}; --seeds >= 1; --steps >= 2')

  tmp_data = None if (args.data_dir or os.environ.get('TFDS_DATA_DIR')) else (
      tempfile.TemporaryDirectory(prefix='vectorized_seeds_tfds_'))
  data_dir = args.data_dir or os.environ.get('TFDS_DATA_DIR') or tmp_data.name
  rows = []
  with tempfile.TemporaryDirectory(prefix='vectorized_seeds_') as tmp:
    for model in models:
      print(f'{model}: {args.seeds} sequential runs, then a group of {args.seeds} per mode ...',
            file=sys.stderr, flush=True)
      rows += bench_model(model, args.seeds, args.steps, modes, data_dir,
                          pathlib.Path(tmp) / model)

  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} (1 device, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}); K={args.seeds} seeds, "
        f"{args.steps} steps per run\n")
  print('| model | mode   | seq wall s | vec wall s | wall speed-up | seq model-steps/s | '
        'vec model-steps/s | steps/s ratio | test acc seq / vec |')
  print('|:------|:-------|-----------:|-----------:|--------------:|------------------:|'
        '------------------:|--------------:|-------------------:|')
  for r in rows:
    print(f"| {r['model']:<5} | {r['mode']:<6} | {r['sequential_wall']:10.1f} | "
          f"{r['vectorized_wall']:10.1f} | "
          f"{r['sequential_wall'] / r['vectorized_wall']:12.2f}x | "
          f"{r['sequential_model_steps_per_second']:17,.0f} | "
          f"{r['vectorized_model_steps_per_second']:17,.0f} | "
          f"{r['vectorized_model_steps_per_second'] / r['sequential_model_steps_per_second']:12.2f}x"
          f" | {r['sequential_test_accuracy']:.3f} / {r['vectorized_test_accuracy']:.3f} |")
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(rows, indent=2) + '\n')
    print(f'\nwrote {args.json}')
  return 0


if __name__ == '__main__':
  sys.exit(main())

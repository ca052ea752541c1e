"""Steps per dispatch 1 vs 8 vs 32 through the runner: does `lax.scan` over k batches pay off?

Command (from the repo root; ~2-3 min on 2 CPU cores; asserts nothing about speed):

  .venv/bin/python benchmarks/steps_per_dispatch.py [--steps 1024] [--ks 1,8,32]

Rows: a small dense model, where launching a step from Python costs about as much as the step
(configs/default.py: the seed MLP on digits, batch 64), and a small convolutional one
(configs/mnist1d_cnn.py, batch 100), whose convolutions XLA:CPU may compile into slower kernels
inside a loop body (DESIGN.md measured ~3x). Each run is research.train_and_evaluate on one
device in a temporary workdir, evaluating and checkpointing only at the end; the columns are its
summary's steps/s (compile excluded) and compile seconds, and the speed-up against k = 1.
TFDS data_dir: $TFDS_DATA_DIR or a temporary folder (the bundled datasets are built there).
"""
import argparse
import logging
import os
import pathlib
import tempfile

import research
from research import config as config_lib

REPO = pathlib.Path(__file__).resolve().parent.parent
MODELS = {'mlp (digits)': 'configs/default.py', 'cnn (mnist1d)': 'configs/mnist1d_cnn.py'}


def measure(config_path: str, k: int, steps: int, data_dir: str) -> dict:
  config = config_lib.load(str(REPO / config_path))
  config_lib.apply_overrides(config, [
      f'total_steps={steps}', f'eval_every={steps}', f'checkpoint_every={steps}',
      f'log_every={steps}', f'steps_per_dispatch={k}', 'num_devices=1',
      f'dataset.data_dir={data_dir!r}'])
  with tempfile.TemporaryDirectory() as workdir:
    summary = research.train_and_evaluate(config, workdir)
  return {'steps_per_second': summary['steps_per_second'],
          'compile_seconds': summary['compile_seconds'],
          'test_accuracy': summary['final']['test']['accuracy']}


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--steps', type=int, default=1024, help='a multiple of every k')
  parser.add_argument('--ks', default='1,8,32')
  args = parser.parse_args(argv)
  logging.getLogger('research').setLevel(logging.WARNING)
  data_dir = os.environ.get('TFDS_DATA_DIR') or tempfile.mkdtemp(prefix='tfds-')
  ks = [int(k) for k in args.ks.split(',')]
  rows = []
  for name, path in MODELS.items():
    for k in ks:
      rows.append({'model': name, 'k': k, **measure(path, k, args.steps, data_dir)})
  print(f'{args.steps} steps per run, 1 CPU device; steps/s excludes compilation\n')
  print('| model         |  k | steps/s | vs k=1 | compile s | test acc |')
  print('|:--------------|---:|--------:|-------:|----------:|---------:|')
  for row in rows:
    base = next(r for r in rows if r['model'] == row['model'] and r['k'] == ks[0])
    print(f"| {row['model']:<13} | {row['k']:>2} | {row['steps_per_second']:7,.0f} | "
          f"{row['steps_per_second'] / base['steps_per_second']:5.2f}x | "
          f"{row['compile_seconds']:9.2f} | {row['test_accuracy']:8.3f} |")
  return rows


if __name__ == '__main__':
  main()

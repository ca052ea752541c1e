"""The seed MLP through the `research` runner against the seed document's own PyTorch loop.

Command (from the repo root; ~1 min on 2 CPU cores; asserts nothing about speed):

  .venv/bin/python benchmarks/seed_runner_vs_torch.py [--steps 2000] [--batch-sizes 32,128]

PyTorch is an optional extra, not a dependency: `pip install -e '.[torch]'` (its CPU build:
`pip install torch --index-url https://download.pytorch.org/whl/cpu`). Without it the torch rows
say "skipped: torch not installed" and the runner rows are still measured.

Both sides train the seed's network (784-128-64-10, ReLU, cross-entropy, SGD lr 0.01) on the same
batches in the same order: research.data.train_iterator over configs/seed_mlp.py:dataset=mnist_idx
(real 28x28 MNIST digits in ../shared/data/mnist-t10k; bundled 8x8 `digits` if that folder is
missing, and then the input layer is 64 wide).
  runner  research.train_and_evaluate (1 device, evaluation and checkpoint once at the end): its
          summary's steps/s (compile excluded) and test accuracy.
  torch   the seed's `Net`, `nn.CrossEntropyLoss` and `optim.SGD(lr=0.01)` loop written as in the
          seed (zero_grad, forward, loss, backward, step, loss.item()), fed each batch from the
          same iterator with torch.from_numpy; timed after 2 warm-up steps over --steps steps;
          test accuracy from the same test split. Initializations differ (PyTorch's vs Flax's).
"""
import argparse
import logging
import os
import pathlib
import tempfile
import time

import numpy as np

import research
from research import config as config_lib, data

REPO = pathlib.Path(__file__).resolve().parent.parent
MNIST_DIR = REPO.parent / 'shared' / 'data' / 'mnist-t10k'


def seed_config(batch_size: int, steps: int, data_dir: str):
  dataset = 'mnist_idx' if MNIST_DIR.is_dir() else 'digits'
  config = config_lib.load(f"{REPO / 'configs' / 'seed_mlp.py'}:dataset={dataset}")
  config_lib.apply_overrides(config, [
      f'batch_size={batch_size}', f'total_steps={steps}', f'eval_every={steps}',
      f'checkpoint_every={steps}', f'log_every={steps}', 'num_devices=1',
      f'dataset.data_dir={data_dir!r}'])
  if dataset == 'mnist_idx':
    config.dataset.manual_dir = str(MNIST_DIR)
  return config


def run_runner(config) -> dict:
  with tempfile.TemporaryDirectory() as workdir:
    summary = research.train_and_evaluate(config, workdir)
  return {'steps_per_second': summary['steps_per_second'],
          'test_accuracy': summary['final']['test']['accuracy']}


def run_torch(config, torch) -> dict:
  """The seed's PyTorch loop, on the runner's batches."""
  nn, F, optim = torch.nn, torch.nn.functional, torch.optim
  resolved = config_lib.resolve(config, 1)
  info = data.prepare(resolved.dataset)
  inputs = int(np.prod(info.input_shape))

  class Net(nn.Module):  # The seed's network, as its document writes it.
    def __init__(self):
      super().__init__()
      self.fc1 = nn.Linear(inputs, 128)
      self.fc2 = nn.Linear(128, 64)
      self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
      x = torch.flatten(x, 1)
      x = F.relu(self.fc1(x))
      x = F.relu(self.fc2(x))
      return self.fc3(x)

  torch.manual_seed(0)
  net, criterion = Net(), nn.CrossEntropyLoss()
  optimizer = optim.SGD(net.parameters(), lr=0.01)
  batches = data.train_iterator(resolved.dataset, config.batch_size, config.seed)

  def step():
    batch = next(batches)
    x, y = torch.from_numpy(batch['input']), torch.from_numpy(batch['label']).long()
    optimizer.zero_grad()
    loss = criterion(net(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()

  for _ in range(2):
    step()
  tic = time.perf_counter()
  for _ in range(config.total_steps):
    step()
  seconds = time.perf_counter() - tic
  right = total = 0
  with torch.no_grad():
    for batch in data.eval_batches(resolved.dataset, 'test', 1000):
      predicted = net(torch.from_numpy(batch['input'])).argmax(1).numpy()
      right += int(((predicted == batch['label']) & batch['mask']).sum())
      total += int(batch['mask'].sum())
  return {'steps_per_second': config.total_steps / seconds, 'test_accuracy': right / total}


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--steps', type=int, default=2000)
  parser.add_argument('--batch-sizes', default='32,128')
  args = parser.parse_args(argv)
  logging.getLogger('research').setLevel(logging.WARNING)
  data_dir = os.environ.get('TFDS_DATA_DIR') or tempfile.mkdtemp(prefix='tfds-')
  try:
    import torch  # pylint: disable=g-import-not-at-top
    torch_note = f'torch {torch.__version__}, {torch.get_num_threads()} threads'
  except ImportError:
    torch, torch_note = None, 'skipped: torch not installed'
  rows = []
  for batch_size in (int(b) for b in args.batch_sizes.split(',')):
    config = seed_config(batch_size, args.steps, data_dir)
    rows.append({'batch': batch_size, 'path': 'runner', **run_runner(config)})
    if torch is None:
      rows.append({'batch': batch_size, 'path': 'torch', 'note': torch_note})
    else:
      rows.append({'batch': batch_size, 'path': 'torch', **run_torch(config, torch)})
  print(f"seed MLP, {config.dataset.name}, SGD 0.01, {args.steps} steps per run; {torch_note}\n")
  print('| batch | path   | steps/s | examples/s | test acc |')
  print('|------:|:-------|--------:|-----------:|---------:|')
  for r in rows:
    if 'note' in r:
      print(f"| {r['batch']:5} | {r['path']:<6} | {r['note']} | | |")
      continue
    print(f"| {r['batch']:5} | {r['path']:<6} | {r['steps_per_second']:7,.0f} | "
          f"{r['steps_per_second'] * r['batch']:10,.0f} | {r['test_accuracy']:8.3f} |")
  return rows


if __name__ == '__main__':
  main()

"""MNIST-1D CNN / MLP / GRU: `research train` against a PyTorch loop of the same network and recipe.

Command (from the repo root; asserts nothing about speed; the full run took 30 min on 2 shared
cores, load ~6):

  .venv/bin/python benchmarks/mnist1d_vs_torch.py [--models cnn,mlp,gru] [--steps N] [--seeds 5]
      [--seed-modes vmap,unroll] [--torch-settings 1:PASSIVE,1:ACTIVE,2:PASSIVE,2:ACTIVE]
      [--data-dir DIR] [--json PATH]
  smoke (< 1 min): --models cnn --steps 200 --seeds 0 --torch-settings 1:PASSIVE

Every row is a child process, timed by this one from just before the child starts, so that
imports count on both sides. The recipe is configs/mnist1d_{cnn,mlp,gru}.py's (Adam 1e-2, batch
100, 6,000 steps, a new seeded order of the 3,600 training sequences every epoch, validation
every 500 steps, then train and test accuracy at the end); `--steps` shortens both sides alike.
  runner  `research train --config configs/mnist1d_X.py` (checkpoints at every evaluation, as the
          config has it). wall: to summary.json's modification; exit: to the process's end.
          Phases from the arrival times of its log lines (PYTHONUNBUFFERED=1) and summary.json:
          import (to "setting up"), setup (to the "step 1" progress line, less compile), 1st step
          (summary's compile_seconds), steps (timed steps / summary's steps_per_second), loop
          other (evaluations, checkpoints and logging between the first and last step), final
          (last step to summary.json: final train / test evaluation, summary).
  torch   this file's `--torch-child`: the same layers written with torch.nn (parameter counts
          printed and asserted equal), initialized as the flax model is (LeCun-normal kernels
          and zero biases for the CNN and MLP; the GRU config asks for PyTorch's own init), the
          same Adam, batches, evaluation cadence and final evaluations, with torch.set_num_threads
          (1 or 2) and OMP_WAIT_POLICY (PASSIVE or ACTIVE) per row. It reads the very arrays of
          the prepared TFDS splits, exported once by this process (research.data.split_examples)
          to an .npz, so its child imports only NumPy and torch. No checkpoints (the runner
          writes 12). Phases: import (torch), setup (data, model, optimizer), 1st step, steps,
          loop other (its evaluations), final. Settings run in the order given; one that runs
          past 1.5x the fastest finished setting's wall (it cannot be the fastest) is killed, and
          its row says so (the first one: past max(120 s, 4x the runner's wall)).
  runner, torch hidden (--hide-torch, default the CNN): the same `research train` with a `torch`
          that raises ImportError first on PYTHONPATH, as in a venv without torch: tensorboardX,
          which the runner imports, imports torch whenever it is installed (~3 s of start-up).
  seeds   5 seeds of the CNN: `research sweep` of a one-point experiment (written to a temporary
          file) that runs the seeds as one vectorized group (research/sweeps/group_child.py), per
          `vectorize_mode`, against 5 sequential torch children at the fastest CNN setting above.
The last column: for a runner row, the fastest torch wall / its wall (the speed-up; targets from
issue 14: >= 3x for the CNN, >= 10x for 5 seeds at equal mean test accuracy); for a torch row, its
wall / the runner's. PyTorch: `pip install torch` (PyPI's wheel; its CUDA libraries import fine on
a CPU machine).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RESEARCH = str(pathlib.Path(sys.executable).parent / 'research')
MODELS = ('cnn', 'mlp', 'gru')
SETTINGS = '1:PASSIVE,1:ACTIVE,2:PASSIVE,2:ACTIVE'
PHASES = ('import', 'setup', 'first', 'steps', 'loop_other', 'final')
SWEEP = """from research.sweeps.spec import Sweep, axis, product
def get_sweep():
  return Sweep(name='cnn_seeds', base='configs/mnist1d_cnn.py', seeds={seeds},
               grid=product(axis('mode', {{'{mode}': {{'vectorize_mode': '{mode}'}}}})),
               overrides={overrides!r})
"""


# ---------------------------------------------------------------- the PyTorch child (no JAX here)
def torch_child(spec: dict) -> dict:
  """Trains spec['model'] with PyTorch as the runner trains it; returns times and accuracies."""
  stamps = {'start': spec['start']}
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(spec['threads'])
  stamps['import'] = time.time()
  arrays = np.load(spec['data'])
  split = {s: (torch.from_numpy(arrays[f'{s}_input']), torch.from_numpy(arrays[f'{s}_label']))
           for s in ('train', 'validation', 'test')}
  torch.manual_seed(spec['seed'])
  net, frozen = _torch_model(spec, torch, nn)
  trained = sum(p.numel() for p in net.parameters()) - frozen
  adam = torch.optim.Adam(net.parameters(), lr=spec['lr'], betas=(spec['b1'], spec['b2']),
                          eps=1e-8)  # optax.adam's eps (added outside the square root, as here).
  order = torch.Generator().manual_seed(spec['seed'])

  def evaluate(name):  # Batches of the eval batch size, as the runner's evaluation.
    net.eval()
    x, y = split[name]
    right, loss = 0, 0.0
    with torch.no_grad():
      for i in range(0, len(y), spec['eval_batch']):
        logits = net(x[i:i + spec['eval_batch']])
        loss += float(nn.functional.cross_entropy(logits, y[i:i + spec['eval_batch']],
                                                  reduction='sum'))
        right += int((logits.argmax(1) == y[i:i + spec['eval_batch']]).sum())
    net.train()
    return {'accuracy': right / len(y), 'loss': loss / len(y)}

  x_train, y_train = split['train']
  per_epoch, batch = len(y_train) // spec['batch'], spec['batch']
  stamps['setup'] = time.time()
  step_seconds, eval_seconds, losses, validation = 0.0, 0.0, [], None
  for step in range(1, spec['steps'] + 1):
    tic = time.time()
    if (step - 1) % per_epoch == 0:  # A new seeded order every epoch; the remainder is dropped.
      permutation = torch.randperm(len(y_train), generator=order)
    rows = permutation[(step - 1) % per_epoch * batch:][:batch]
    adam.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(net(x_train[rows]), y_train[rows])
    loss.backward()
    adam.step()
    losses.append(loss.item())
    if step == 1:
      stamps['first'] = time.time()
    else:
      step_seconds += time.time() - tic
    if step % spec['eval_every'] == 0 or step == spec['steps']:
      tic = time.time()
      validation = evaluate('validation')
      eval_seconds += time.time() - tic
  stamps['loop_end'] = time.time()
  final = {'train': evaluate('train'), 'validation': validation, 'test': evaluate('test')}
  stamps['final'] = time.time()
  return {'params': trained, 'stamps': stamps, 'step_seconds': step_seconds,
          'eval_seconds': eval_seconds, 'final': final, 'last_loss': float(np.mean(losses[-50:])),
          'torch': torch.__version__}


def _torch_model(spec: dict, torch, nn):
  """(the network, the number of its parameters held at zero)."""
  def lecun_(module):  # flax's lecun_normal: truncated normal, variance 1 / fan_in; zero bias.
    fan_in = module.weight[0].numel()
    std = (1.0 / fan_in) ** 0.5 / .87962566103423978
    nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
    nn.init.zeros_(module.bias)
    return module

  name, width = spec['model'], spec['width']
  if name == 'mlp':
    layers, inputs = [], spec['length']
    for w in width:
      layers += [lecun_(nn.Linear(inputs, w)), nn.ReLU()]
      inputs = w
    return nn.Sequential(*layers, lecun_(nn.Linear(inputs, 10))), 0
  if name == 'cnn':  # Conv1D k5, k3, k3, stride 2, padding 1, ReLU; flatten; linear.
    layers, channels, length = [nn.Unflatten(1, (1, spec['length']))], 1, spec['length']
    for i, w in enumerate(width):
      kernel = 5 if i == 0 else 3
      layers += [lecun_(nn.Conv1d(channels, w, kernel, stride=2, padding=1)), nn.ReLU()]
      channels, length = w, (length + 2 - kernel) // 2 + 1
    return nn.Sequential(*layers, nn.Flatten(), lecun_(nn.Linear(channels * length, 10))), 0

  class GRU(nn.Module):  # Bidirectional, one layer, readout from every step's states.
    def __init__(self):
      super().__init__()
      self.gru = nn.GRU(1, width, batch_first=True, bidirectional=True)
      self.readout = nn.Linear(spec['length'] * 2 * width, 10)

    def forward(self, x):
      return self.readout(self.gru(x[:, :, None])[0].flatten(1))

  net = GRU()  # PyTorch's init, as model.weight_init='pytorch' asks.
  # flax's GRUCell has no recurrent bias in the r and z gates (it would add to the input's):
  # nn.GRU's are held at zero (never updated), so the trained parameters are the same 5,110.
  mask = torch.ones(3 * width)
  mask[:2 * width] = 0
  for bias in (net.gru.bias_hh_l0, net.gru.bias_hh_l0_reverse):
    with torch.no_grad():
      bias.mul_(mask)
    bias.register_hook(lambda grad: grad * mask)
  return net, 2 * 2 * width


# ---------------------------------------------------------------- the parent
def recipe(model: str, steps: int | None):
  """The config's recipe, checked to be what the torch child implements."""
  from research import config as config_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.resolve(config_lib.load(str(REPO / 'configs' / f'mnist1d_{model}.py')), 1)
  opt, m = config.optimizer, config.model
  assert (opt.name, opt.weight_decay, opt.schedule, opt.grad_clip_norm, tuple(opt.args)) == (
      'adam', 0.0, 'constant', 0.0, ()), opt
  assert (config.loss, config.label_smoothing, config.dataset.shuffle, tuple(config.augment),
          config.ema.decay, m.dropout_rate) == ('cross_entropy', 0.0, 'every_epoch', (), 0.0, 0.0)
  if model == 'mlp':
    assert m.activation == 'relu'
    width = list(m.hidden_sizes)
  elif model == 'cnn':
    assert m.variant == '1d'
    width = list(m.channels or (25, 25, 25))
  else:
    assert (m.bidirectional, m.num_layers, m.readout, m.weight_init) == (True, 1, 'all', 'pytorch')
    width = m.hidden_size
  return config, dict(model=model, width=width, lr=opt.learning_rate, b1=opt.b1, b2=opt.b2,
                      batch=config.batch_size,
                      eval_batch=config.eval_batch_size or config.batch_size,
                      steps=steps or config.total_steps, eval_every=config.eval_every)


def export_data(config, data_dir: str, path: pathlib.Path) -> int:
  """The prepared TFDS splits' arrays (as the runner's model sees them) to one .npz; the length."""
  from research import data  # pylint: disable=g-import-not-at-top
  config.dataset.data_dir = data_dir
  data.prepare(config.dataset)
  arrays = {}
  for split in ('train', 'validation', 'test'):
    examples = data.split_examples(config.dataset, split)
    arrays[f'{split}_input'] = examples['input'].astype(np.float32)
    arrays[f'{split}_label'] = examples['label'].astype(np.int64)
  np.savez(path, **arrays)
  return arrays['train_input'].shape[1]


def run_runner(model: str, steps: int | None, data_dir: str, workdir: pathlib.Path,
               hide_torch: pathlib.Path | None = None) -> dict:
  """`research train`; with `hide_torch` (a folder holding a `torch` that raises ImportError) first
  on PYTHONPATH, as in a venv without torch (tensorboardX, which the runner imports, imports torch
  when it can)."""
  command = [RESEARCH, 'train', '--config', str(REPO / 'configs' / f'mnist1d_{model}.py'),
             '--workdir', str(workdir), f'--config.dataset.data_dir={data_dir}']
  if steps:
    command.append(f'--config.total_steps={steps}')
  env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
  if hide_torch:
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(hide_torch), env.get('PYTHONPATH')]))
  start, lines = time.time(), []
  with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True) as child:
    for line in child.stdout:
      lines.append((time.time(), line))
  end = time.time()
  if child.returncode:
    raise RuntimeError(f"{' '.join(command)} failed:\n{''.join(l for _, l in lines[-20:])}")
  summary = json.loads((workdir / 'summary.json').read_text())
  done = (workdir / 'summary.json').stat().st_mtime
  when = lambda text: next(t for t, l in lines if text in l)
  total = summary['steps']
  last = next(t for t, l in reversed(lines) if f'| step {total}/{total}' in l)
  steps_s = (total - 1) / summary['steps_per_second']
  first = when('| step 1/')
  phases = dict(import_=when('setting up') - start, first=summary['compile_seconds'],
                steps=steps_s, loop_other=last - first - steps_s, final=done - last)
  phases['setup'] = first - start - phases['import_'] - phases['first']
  phases['import'] = phases.pop('import_')
  return dict(path='runner', setting='torch hidden' if hide_torch else '',
              params=summary['param_counts']['total'],
              wall=done - start, exit=end - start, phases=phases,
              steps_per_second=summary['steps_per_second'],
              test_accuracy=summary['final']['test']['accuracy'])


def run_torch(spec: dict, threads: int, policy: str, seed: int = 0,
              timeout: float | None = None) -> dict:
  """One torch child; one that runs past `timeout` seconds is killed (its row says so)."""
  env = {**os.environ, 'OMP_WAIT_POLICY': policy}
  start = time.time()
  child_spec = {**spec, 'threads': threads, 'seed': seed, 'start': start}
  try:
    out = subprocess.run([PYTHON, __file__, '--torch-child', json.dumps(child_spec)], cwd=REPO,
                         env=env, capture_output=True, text=True, check=False, timeout=timeout)
  except subprocess.TimeoutExpired:
    return dict(path='torch', setting=f'{threads} thr {policy}', params=None, wall=None,
                exit=time.time() - start, phases={}, killed=timeout)
  end = time.time()
  if out.returncode:
    raise RuntimeError(f'torch child failed:\n{out.stderr[-3000:]}')
  result = json.loads(out.stdout.strip().splitlines()[-1])
  s = result['stamps']
  phases = dict(import_=s['import'] - start, setup=s['setup'] - s['import'],
                first=s['first'] - s['setup'], steps=result['step_seconds'],
                loop_other=s['loop_end'] - s['first'] - result['step_seconds'],
                final=s['final'] - s['loop_end'])
  phases['import'] = phases.pop('import_')
  return dict(path='torch', setting=f'{threads} thr {policy}', params=result['params'],
              wall=s['final'] - start, exit=end - start, phases=phases,
              steps_per_second=(spec['steps'] - 1) / result['step_seconds'],
              test_accuracy=result['final']['test']['accuracy'], torch=result['torch'])


def run_group(mode: str, seeds: int, steps: int | None, data_dir: str, root: pathlib.Path) -> dict:
  """`research sweep` of one point's seeds, which it trains as one vectorized group."""
  overrides = {'dataset.data_dir': data_dir, **({'total_steps': steps} if steps else {})}
  experiment = root / f'seeds_{mode}.py'
  experiment.write_text(SWEEP.format(seeds=seeds, mode=mode, overrides=overrides))
  workdir = root / f'sweep-{mode}'
  start = time.time()
  out = subprocess.run([RESEARCH, 'sweep', str(experiment), '--workdir', str(workdir)], cwd=REPO,
                       capture_output=True, text=True, check=False)
  end = time.time()
  summaries = sorted(workdir.glob('mode=*/summary.json'))
  if out.returncode or len(summaries) != seeds or 'vectorized' not in out.stdout:
    raise RuntimeError(f'the sweep did not run one vectorized group:\n{out.stdout}{out.stderr}')
  runs = [json.loads(p.read_text()) for p in summaries]
  total = runs[0]['steps']
  return dict(path=f'runner group {mode}', setting='', params=runs[0]['param_counts']['total'],
              wall=max(p.stat().st_mtime for p in summaries) - start, exit=end - start,
              phases=dict(first=runs[0]['compile_seconds'],
                          steps=(total - 1) / runs[0]['steps_per_second']),
              steps_per_second=seeds * runs[0]['steps_per_second'],
              test_accuracy=float(np.mean([r['final']['test']['accuracy'] for r in runs])))


def sequential_torch(spec: dict, seeds: int, threads: int, policy: str) -> dict:
  runs = [run_torch(spec, threads, policy, seed) for seed in range(seeds)]
  add = lambda key: sum(r[key] for r in runs)
  return dict(path=f'torch x{seeds} sequential', setting=runs[0]['setting'],
              params=runs[0]['params'], wall=add('wall'), exit=add('exit'),
              phases={p: sum(r['phases'][p] for r in runs) for p in PHASES},
              steps_per_second=float(np.mean([r['steps_per_second'] for r in runs])),
              test_accuracy=float(np.mean([r['test_accuracy'] for r in runs])))


def note(model: str, r: dict) -> None:
  """One finished row on stderr, as it comes (the table is printed at the end)."""
  wall = f"killed after {r['exit']:.0f} s" if r.get('killed') else f"wall {r['wall']:.1f} s"
  acc = '' if r.get('killed') else f", test acc {r['test_accuracy']:.3f}"
  print(f"  {model} {r['path']} {r['setting']}: {wall}{acc}", file=sys.stderr, flush=True)


def uptime() -> str:
  return subprocess.run(['uptime'], capture_output=True, text=True, check=False).stdout.strip()


def print_table(rows: list[dict]) -> None:
  print('| model | seeds | path | setting | params | wall s | exit s | import s | setup s | '
        '1st step s | steps s | loop other s | final s | steps/s | test acc | speed-up |')
  print('|:--|--:|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
  for r in rows:
    phase = lambda p: f"{r['phases'][p]:.1f}" if p in r['phases'] else ''
    if r.get('killed'):
      print(f"| {r['model']} | {r['seeds']} | {r['path']} | {r['setting']} | | killed after "
            f"{r['exit']:.0f} s |" + ' |' * 9 + f" {r['ratio']} |")
      continue
    print(f"| {r['model']} | {r['seeds']} | {r['path']} | {r['setting']} | {r['params']:,} | "
          f"{r['wall']:.1f} | {r['exit']:.1f} | " + ' | '.join(phase(p) for p in PHASES) +
          f" | {r['steps_per_second']:,.0f} | {r['test_accuracy']:.3f} | {r['ratio']} |")


def compare(model: str, spec: dict, settings: list, args, data_dir: str, root: pathlib.Path,
            hidden: pathlib.Path, fastest: dict) -> list[dict]:
  """Part 1 for one model: the runner (and with torch hidden), then each torch setting."""
  print(f'{model}: runner, then torch {args.torch_settings} ...', file=sys.stderr, flush=True)
  runner = run_runner(model, args.steps, data_dir, root / f'runner-{model}')
  note(model, runner)
  torches = []
  for t, p in settings:  # A setting past 1.5x the fastest so far's wall cannot be the fastest.
    finished = [r['wall'] for r in torches if r['wall']]
    limit = 1.5 * min(finished) if finished else max(120.0, 4 * runner['wall'])
    torches.append(run_torch(spec, t, p, timeout=limit))
    note(model, torches[-1])
  without = []
  if model in args.hide_torch.split(','):
    without = [run_runner(model, args.steps, data_dir, root / f'runner-{model}-no-torch', hidden)]
    note(model, without[0])
  for r in torches:
    if r['params'] is not None:
      print(f"{model}: parameters runner {runner['params']:,}, torch {r['params']:,}",
            file=sys.stderr)
      assert r['params'] == runner['params'], (model, runner['params'], r['params'])
  best = min(torches, key=lambda r: r['wall'] or float('inf'))
  if not best['wall']:
    raise RuntimeError(f'{model}: every torch setting was killed')
  fastest[model] = (spec, settings[torches.index(best)])
  for r in [runner, *without]:
    r['ratio'] = f"{best['wall'] / r['wall']:.2f}x"
  for r in torches:
    r['ratio'] = (f"> {r['exit'] / runner['wall']:.2f}" if r.get('killed') else
                  f"{r['wall'] / runner['wall']:.2f}" + (' (fastest)' if r is best else ''))
  return [dict(r, model=model, seeds=1) for r in [runner, *without, *torches]]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--models', default=','.join(MODELS))
  parser.add_argument('--steps', type=int, default=None, help="override the configs' 6,000")
  parser.add_argument('--seeds', type=int, default=5, help='CNN seeds of part 2 (0: skip it)')
  parser.add_argument('--seed-modes', default='vmap,unroll')
  parser.add_argument('--torch-settings', default=SETTINGS, help='THREADS:OMP_WAIT_POLICY,...')
  parser.add_argument('--hide-torch', default='cnn', help='models that also get a runner row with '
                      'torch hidden from the runner (as without torch installed); "" for none')
  parser.add_argument('--data-dir', default=None, help='TFDS data_dir (default $TFDS_DATA_DIR, '
                      'else a temporary folder)')
  parser.add_argument('--json', default=None, metavar='PATH')
  parser.add_argument('--torch-child', default=None, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.torch_child:
    print(json.dumps(torch_child(json.loads(args.torch_child))))
    return 0
  models = [m for m in args.models.split(',') if m]
  settings = [(int(t), p.upper())
              for t, p in (s.split(':') for s in args.torch_settings.split(','))]
  modes = [m for m in args.seed_modes.split(',') if m]
  if not set(models) <= set(MODELS) or (args.steps is not None and args.steps < 2) or not all(
      p in ('PASSIVE', 'ACTIVE') and t > 0 for t, p in settings) or args.seeds < 0:
    parser.error(f'--models: some of {MODELS}; --steps >= 2; --torch-settings like {SETTINGS}')
  before = uptime()
  print(f'load before: {before}', flush=True)
  rows = []
  with tempfile.TemporaryDirectory(prefix='mnist1d_vs_torch_') as tmp:
    root = pathlib.Path(tmp)
    data_dir = args.data_dir or os.environ.get('TFDS_DATA_DIR') or str(root / 'tfds')
    config, _ = recipe('cnn', args.steps)
    tic = time.time()
    length = export_data(config, data_dir, root / 'mnist1d.npz')
    print(f'data prepared and exported in {time.time() - tic:.1f} s', file=sys.stderr, flush=True)
    fastest, hidden = {}, root / 'hide_torch'
    (hidden / 'torch').mkdir(parents=True)
    (hidden / 'torch' / '__init__.py').write_text(
        "raise ImportError('torch is hidden here by benchmarks/mnist1d_vs_torch.py')\n")
    # The CNN first, and its seeds right after it: the targets are the CNN's.
    order = sorted(set(models) | ({'cnn'} if args.seeds else set()), key=MODELS.index)
    for model in order:
      _, spec = recipe(model, args.steps)
      spec.update(data=str(root / 'mnist1d.npz'), length=length)
      if model not in models:  # Only part 2 needs the CNN: its first torch setting.
        fastest['cnn'] = (spec, settings[0])
      else:
        rows += compare(model, spec, settings, args, data_dir, root, hidden, fastest)
      if model == 'cnn' and args.seeds:
        spec, (threads, policy) = fastest['cnn']
        print(f'cnn: {args.seeds} seeds: groups {modes}, then torch at {threads}:{policy} ...',
              file=sys.stderr, flush=True)
        groups = [run_group(mode, args.seeds, args.steps, data_dir, root) for mode in modes]
        sequential = sequential_torch(spec, args.seeds, threads, policy)
        for r in [*groups, sequential]:
          note('cnn', r)
        sequential['ratio'] = ' / '.join(f"{sequential['wall'] / g['wall']:.2f}" for g in groups)
        for g in groups:
          g['ratio'] = f"{sequential['wall'] / g['wall']:.2f}x"
        rows += [dict(r, model='cnn', seeds=args.seeds) for r in [*groups, sequential]]
  import jax  # pylint: disable=g-import-not-at-top
  torch_version = next((r['torch'] for r in rows if 'torch' in r), 'n/a')
  print(f'\njax {jax.__version__}, torch {torch_version}, {os.cpu_count()} CPUs; '
        f"steps per run: {args.steps or 'the configs (6,000)'}\nload before: {before}\n"
        f'load after:  {uptime()}\n')
  print_table(rows)
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(rows, indent=2) + '\n')
  return 0


if __name__ == '__main__':
  sys.exit(main())

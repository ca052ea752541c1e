"""Issue 17's DQN speed targets: the `research` runner on CartPole against a plain PyTorch DQN.

Command (from the repo root; ~12 min on 2 CPU cores at the default 500k steps; asserts nothing
about speed):

  .venv/bin/python benchmarks/dqn_speed.py [--steps 500000] [--seeds 5] [--no-sequential]
      [--torch-threads 1,2] [--json PATH]

Every row is its own child process, started one after the other (nothing else of this script
runs beside it), each timed from process start to exit, each with a compilation cache of its own
that starts empty (so `compile s` and `wall s` include compiling, as a first run's do):
  runner 1 seed     `research train --config configs/dqn_cartpole.py` (gymnax CartPole-v1, 10
                    environments, replay 10k, batch 128, Adam 2.5e-4, an update every 10
                    environment steps after 10k, target copied every 500, ε 1 -> 0.05 over 250k,
                    squared TD error, γ 0.99; checkpoints, evaluations and metrics on as the
                    config sets them). env steps/s and compile seconds are the run's own
                    summary.json (`env_steps_per_second`: training only, evaluations and
                    checkpoints excluded), wall is process start -> summary.json written. The
                    config runs on one core (`cpu_threads=1`, research/devices/host_cpus.py).
  runner K vmapped  `research sweep` of the same config with K seeds: one vectorized group (one
                    vmapped program, research/run/agent.py `train_group`), its seeds spread
                    over the config's `dqn.group_devices=2` XLA:CPU devices (3 + 2 seeds, each
                    share on a core of its own); per-seed env steps/s from the members'
                    summaries, total = K times it.
  ..., cache warm   the same sweep again in a fresh workdir, its compiled programs loaded from
                    the cache the row above filled (what every later run of the config does).
  ..., one device   `dqn.group_devices=1`: the K seeds as one program on one device.
  runner K seq.     `research sweep --no-vectorize`: the K seeds as K runs, one after the other.
  *, both cores     the same with `--config.cpu_threads=0`: XLA:CPU's thread pool on both cores,
                    which hands the agent's chain of small kernels between its two threads.
  torch N threads   `DQN` below: PyTorch, gymnasium's CartPole-v1 in a synchronous vector env of
                    10 (autoreset in the same step, the final observation from `info`), the same
                    network (4-120-84-2 MLP, ReLU), replay, schedule, loss (half squared TD
                    error, as the runner's `loss='mse'`) and optimizer; torch.set_num_threads(N)
                    with OMP_WAIT_POLICY=PASSIVE. env steps/s counts training only; its greedy
                    return is 100 episodes after training.
The last columns set each row against issue 17's targets: >= 30,000 env steps/s for one seed;
K = 5 seeds of 500k steps in < 60 s wall; >= 5x the PyTorch DQN (its faster thread count).
`uptime` is printed before and after; each row's column `load` is the 1-minute load average
when it ended.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
CONFIG = REPO / 'configs' / 'dqn_cartpole.py'
TARGET_STEPS_PER_SECOND, TARGET_GROUP_WALL, TARGET_RATIO = 30_000, 60.0, 5.0
SWEEP = """from research.sweeps.spec import Metric, Sweep, axis
def get_sweep():
  return Sweep(name='dqn_speed', base={base!r}, seeds={seeds},
               grid=axis('steps', [{loop_steps}], key='total_steps'),
               overrides={overrides!r}, curves=('return',),
               metrics=(Metric('test return', 'final.test.return'),))
"""


def _child(command: list[str], cache: pathlib.Path) -> float:
  env = dict(os.environ, PYTHONUNBUFFERED='1', JAX_COMPILATION_CACHE_DIR=str(cache))
  tic = time.perf_counter()
  result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - tic
  if result.returncode:
    raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
  return wall


def _name(kind: str, overrides: dict) -> str:
  return '-'.join([kind, *(f"{k.replace('.', '_')}_{v}" for k, v in overrides.items())])


def _summaries(root: pathlib.Path) -> list[dict]:
  return [json.loads(p.read_text()) for p in sorted(root.rglob('summary.json'))
          if 'env_steps_per_second' in p.read_text()]


def runner_one(steps: int, tmp: pathlib.Path, overrides: dict) -> dict:
  """One seed through `research train`, with the config's settings but `overrides`."""
  name = _name('one', overrides)
  workdir = tmp / name
  wall = _child([sys.executable, '-m', 'research', 'train', '--config', str(CONFIG),
                 '--workdir', str(workdir), f'--config.total_steps={steps // 1000}',
                 '--config.progress=none', *[f'--config.{k}={v}' for k, v in overrides.items()]],
                tmp / f'cache-{name}')
  (s,) = _summaries(workdir)
  return {'seeds': 1, 'wall': wall, 'compile': s['compile_seconds'],
          'per_seed': s['env_steps_per_second'], 'total': s['env_steps_per_second'],
          'returns': [s['final']['test']['return']]}


def runner_sweep(steps: int, seeds: int, tmp: pathlib.Path, overrides: dict,
                 vectorize: bool, rerun: bool = False) -> dict:
  """K seeds through `research sweep`; `rerun`: the same sweep again in a fresh workdir, with
  the compilation cache its first run filled."""
  name = _name('vec' if vectorize else 'seq', overrides)
  spec = tmp / f'{name}.py'
  spec.write_text(SWEEP.format(base=str(CONFIG), seeds=seeds, loop_steps=steps // 1000,
                               overrides={'progress': 'none', **overrides}))
  workdir = tmp / (name + ('-rerun' if rerun else ''))
  wall = _child([sys.executable, '-m', 'research', 'sweep', str(spec), '--workdir',
                 str(workdir), *([] if vectorize else ['--no-vectorize'])], tmp / f'cache-{name}')
  runs = _summaries(workdir)
  assert len(runs) == seeds, f'{len(runs)} summaries for {seeds} seeds'
  rates = [s['env_steps_per_second'] for s in runs]
  return {'seeds': seeds, 'wall': wall, 'compile': max(s['compile_seconds'] for s in runs),
          'per_seed': sum(rates) / seeds,
          # A group's members advance together; sequential runs take turns (machine rate: mean).
          'total': sum(rates) if vectorize else sum(rates) / seeds,
          'returns': [s['final']['test']['return'] for s in runs]}


def torch_row(steps: int, threads: int) -> dict:
  env = dict(os.environ, OMP_WAIT_POLICY='PASSIVE', OMP_NUM_THREADS=str(threads))
  tic = time.perf_counter()
  result = subprocess.run([sys.executable, __file__, '--torch-child', str(threads),
                           '--steps', str(steps)], cwd=REPO, env=env, capture_output=True,
                          text=True)
  wall = time.perf_counter() - tic
  if result.returncode:
    raise SystemExit(f'torch child failed:\n{result.stderr[-3000:]}')
  out = json.loads(result.stdout.strip().splitlines()[-1])
  return {'seeds': 1, 'wall': wall, 'compile': None, 'per_seed': out['env_steps_per_second'],
          'total': out['env_steps_per_second'], 'returns': [out['return']]}


def torch_dqn(steps: int, threads: int, seed: int = 0) -> dict:
  """A plain PyTorch DQN with the runner's settings (see the module docstring)."""
  import gymnasium as gym  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(threads)
  torch.manual_seed(seed)
  rng = np.random.default_rng(seed)
  n, size, batch, gamma = 10, 10_000, 128, 0.99
  envs = gym.make_vec('CartPole-v1', num_envs=n, vectorization_mode='sync',
                      vector_kwargs={'autoreset_mode': gym.vector.AutoresetMode.SAME_STEP})
  net = lambda: torch.nn.Sequential(torch.nn.Linear(4, 120), torch.nn.ReLU(),
                                    torch.nn.Linear(120, 84), torch.nn.ReLU(),
                                    torch.nn.Linear(84, 2))
  q, target = net(), net()
  target.load_state_dict(q.state_dict())
  optimizer = torch.optim.Adam(q.parameters(), lr=2.5e-4)
  obs_buf, next_buf = np.zeros((size, 4), np.float32), np.zeros((size, 4), np.float32)
  act_buf, rew_buf, term_buf = (np.zeros(size, np.int64), np.zeros(size, np.float32),
                                np.zeros(size, np.float32))
  position = filled = 0
  obs, _ = envs.reset(seed=seed)
  tic = time.perf_counter()
  for t in range(n, steps + 1, n):  # t: environment steps after this vectorized step.
    eps = 1.0 + min((t - n) / 250_000, 1.0) * (0.05 - 1.0)
    with torch.no_grad():
      greedy = q(torch.from_numpy(obs.astype(np.float32))).argmax(1).numpy()
    action = np.where(rng.random(n) < eps, rng.integers(0, 2, n), greedy)
    next_obs, reward, terminated, truncated, info = envs.step(action)
    final = next_obs.copy()
    done = terminated | truncated
    if done.any():
      final[done] = np.stack(info['final_obs'][done])
    rows = np.arange(position, position + n) % size
    obs_buf[rows], next_buf[rows], act_buf[rows] = obs, final, action
    rew_buf[rows], term_buf[rows] = reward, terminated
    position, filled, obs = (position + n) % size, min(filled + n, size), next_obs
    if t >= 10_000 and t % 10 == 0:
      i = rng.integers(0, filled, batch)
      with torch.no_grad():
        best = target(torch.from_numpy(next_buf[i])).max(1).values
        y = torch.from_numpy(rew_buf[i]) + gamma * (1 - torch.from_numpy(term_buf[i])) * best
      taken = q(torch.from_numpy(obs_buf[i])).gather(1, torch.from_numpy(act_buf[i])[:, None])
      loss = 0.5 * ((taken[:, 0] - y) ** 2).mean()
      optimizer.zero_grad()
      loss.backward()
      optimizer.step()
    if t >= 10_000 and t % 500 == 0:
      target.load_state_dict(q.state_dict())
  seconds = time.perf_counter() - tic
  returns, total = [], np.zeros(n)
  obs, _ = envs.reset(seed=seed + 1)
  while len(returns) < 100:  # Greedy episodes; the vector env restarts each as it ends.
    with torch.no_grad():
      action = q(torch.from_numpy(obs.astype(np.float32))).argmax(1).numpy()
    obs, reward, terminated, truncated, _ = envs.step(action)
    total += reward
    for k in np.flatnonzero(terminated | truncated):
      returns.append(total[k])
      total[k] = 0.0
  return {'env_steps_per_second': (steps // n * n) / seconds,
          'return': float(np.mean(returns[:100]))}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--steps', type=int, default=500_000, help='environment steps per run '
                      '(a multiple of 1,000: one loop step of the config)')
  parser.add_argument('--seeds', type=int, default=5, help='K: seeds of the vectorized group')
  parser.add_argument('--no-sequential', action='store_true',
                      help='skip the K sequential runs (K x one run\'s time)')
  parser.add_argument('--torch-threads', default='1,2')
  parser.add_argument('--json', default=None, metavar='PATH')
  parser.add_argument('--torch-child', type=int, default=None, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.torch_child is not None:
    print(json.dumps(torch_dqn(args.steps, args.torch_child)))
    return 0
  if args.steps < 1000 or args.steps % 1000:
    parser.error('--steps must be a positive multiple of 1000')
  uptime = lambda: subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()
  before, rows = uptime(), []

  def add(path, measure, *a):
    print(f'{path} ...', file=sys.stderr, flush=True)
    rows.append({'path': path, **measure(*a), 'load': os.getloadavg()[0]})

  with tempfile.TemporaryDirectory(prefix='dqn_speed_') as tmp:
    tmp = pathlib.Path(tmp)
    k = args.seeds
    add('runner 1 seed', runner_one, args.steps, tmp, {})
    add(f'runner {k} vmapped', runner_sweep, args.steps, k, tmp, {}, True)
    add(f'runner {k} vmapped, cache warm', runner_sweep, args.steps, k, tmp, {}, True, True)
    add(f'runner {k} vmapped, one device', runner_sweep, args.steps, k, tmp,
        {'dqn.group_devices': 1}, True)
    add('runner 1 seed, both cores', runner_one, args.steps, tmp, {'cpu_threads': 0})
    add(f'runner {k} vmapped, both cores', runner_sweep, args.steps, k, tmp, {'cpu_threads': 0},
        True)
    if not args.no_sequential:
      add(f'runner {k} sequential', runner_sweep, args.steps, k, tmp, {}, False)
  for threads in (int(t) for t in args.torch_threads.split(',') if t):
    add(f'torch {threads} thread{"s" if threads > 1 else ""}', torch_row, args.steps, threads)
  torch_best = max((r['per_seed'] for r in rows if r['path'].startswith('torch')), default=None)

  import torch  # pylint: disable=g-import-not-at-top  # Versions only (the rows ran in children).
  import jax  # pylint: disable=g-import-not-at-top
  print(f'uptime before: {before}\nuptime after:  {uptime()}\n')
  print(f"jax {jax.__version__} (CPU), torch {torch.__version__}, {os.cpu_count()} CPUs; "
        f"{args.steps:,} environment steps per seed; targets: >= {TARGET_STEPS_PER_SECOND:,} "
        f"env steps/s (1 seed), {args.seeds} seeds < {TARGET_GROUP_WALL:.0f} s wall, >= "
        f"{TARGET_RATIO:.0f}x torch (best of its rows)\n")
  print('| path | wall s | compile s | env steps/s per seed | env steps/s total | test return '
        '(mean, min) | load | vs 30k/s | wall vs 60 s | vs torch |')
  print('|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
  for r in rows:
    compile_s = '-' if r['compile'] is None else f"{r['compile']:.1f}"
    vs_target = (f"{r['per_seed'] / TARGET_STEPS_PER_SECOND:.2f}x" if r['seeds'] == 1
                 and not r['path'].startswith('torch') else '-')
    vs_wall = f"{r['wall'] / TARGET_GROUP_WALL:.2f}x" if r['seeds'] > 1 else '-'
    vs_torch = f"{r['total'] / torch_best:.2f}x" if torch_best else '-'
    print(f"| {r['path']} | {r['wall']:.1f} | {compile_s} | {r['per_seed']:,.0f} | "
          f"{r['total']:,.0f} | {sum(r['returns']) / len(r['returns']):.1f}, "
          f"{min(r['returns']):.1f} | {r['load']:.1f} | {vs_target} | {vs_wall} | {vs_torch} |")
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps({'before': before, 'rows': rows}, indent=2))
  return 0


if __name__ == '__main__':
  sys.exit(main())

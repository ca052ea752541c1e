"""The DQN sweep's learning-curve table (experiments/dqn.py): greedy return at fixed
environment-step budgets, mean ± sample std over seeds, from each run's validation rows, and the final
test evaluation; markdown on stdout.

  python experiments/dqn_table.py workdirs/dqn > experiments/results/dqn/README.md
"""
import collections
import json
import pathlib
import statistics
import sys

BUDGETS = (50_000, 100_000, 200_000, 300_000, 500_000)
SOLVED = {'CartPole-v1': 475.0}


def _runs(sweep_dir: pathlib.Path):
  """(env, variant) -> [(metric rows, summary)] over the sweep's finished runs."""
  found = collections.defaultdict(list)
  for run in sorted(sweep_dir.iterdir()):
    summary_path = run / 'summary.json'
    if not summary_path.exists():
      continue
    labels = dict(part.split('=', 1) for part in run.name.split(','))
    rows = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    found[(labels['env'], labels['variant'])].append(
        (rows, json.loads(summary_path.read_text())))
  return found


def _cell(values: list[float]) -> str:
  if not values:
    return '-'
  std = statistics.stdev(values) if len(values) > 1 else 0.0  # Sample std, as sweep reports.
  return f'{statistics.mean(values):.1f} ± {std:.1f}'


def main(sweep_dir: str) -> None:
  runs = _runs(pathlib.Path(sweep_dir))
  header = ['env', 'variant', 'seeds'] + [f'{b // 1000}k' for b in BUDGETS] + [
      'final test (100 ep.)', 'seeds ≥ solved', 'env steps/s per seed']
  print('| ' + ' | '.join(header) + ' |')
  print('|' + '---|' * len(header))
  for (env, variant), members in sorted(runs.items()):
    cells = []
    for budget in BUDGETS:
      cells.append(_cell([r['return'] for rows, _ in members for r in rows
                          if r['split'] == 'validation' and r.get('env_steps') == budget]))
    tests = [s['final']['test']['return'] for _, s in members]
    solved = (f"{sum(t >= SOLVED[env] for t in tests)}/{len(tests)}" if env in SOLVED else '-')
    rate = statistics.mean(s['env_steps_per_second'] for _, s in members)
    print(f'| {env} | {variant} | {len(members)} | ' + ' | '.join(cells) +
          f' | {_cell(tests)} | {solved} | {rate:,.0f} |')


if __name__ == '__main__':
  main(sys.argv[1])

"""Child process of `research sweep`: trains several seeds of one grid point as one vmapped program.

  python -P -m research.sweeps.group_child --sweep-dir DIR --group-dir DIR/groups/G RUN_NAME ...

Not meant to be typed by hand: the sweep runner starts it. The run names are looked up in
DIR/sweep.json; each run's workdir DIR/<run name> gets the normal contract, and the group's own
checkpoints live in --group-dir, so rerunning resumes. Exit codes as `research train`.
"""
import argparse
import json
import pathlib
import sys
from typing import Sequence

from research.devices import host_cpus
from research.errors import UserError
from research.run import compile_cache, preemption
from research.sweeps import grid


def train_group(sweep_dir: str, group_dir: str, names: Sequence[str]) -> list[dict]:
  from research import config as config_lib  # pylint: disable=g-import-not-at-top
  from research.run import agent, agent_parts, vectorized  # pylint: disable=g-import-not-at-top
  _, runs = grid.read_record(sweep_dir)
  by_name = {r.name: r for r in runs}
  unknown = [n for n in names if n not in by_name]
  if unknown:
    raise UserError(f"runs {', '.join(unknown)} are not in {sweep_dir}/{grid.SWEEP_FILE}")
  selected = [by_name[n] for n in names]
  configs = grid.build_configs(selected)
  first = configs[selected[0].name]  # The members agree on everything but the seed.
  is_agent = config_lib.is_agent(first)
  if is_agent:
    agent_parts.check(first)  # Before its settings are used, and before anything is written.
    host_cpus.cpu_devices(first.dqn.group_devices)
  host_cpus.apply(first)  # As `research train` does.
  train = agent.train_group if is_agent else vectorized.train_vectorized
  return train(
      [configs[r.name] for r in selected],
      [str(pathlib.Path(sweep_dir) / r.name) for r in selected], group_dir)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='research.sweeps.group_child', description=__doc__)
  parser.add_argument('--sweep-dir', required=True)
  parser.add_argument('--group-dir', required=True)
  parser.add_argument('runs', nargs='+')
  args = parser.parse_args(argv)
  compile_cache.enable()  # As `research train` does: the group's programs, cached for reruns.
  try:
    summaries = train_group(args.sweep_dir, args.group_dir, args.runs)
  except UserError as e:
    print(f"research.sweeps.group_child: error: {e}", file=sys.stderr)
    return 2
  except preemption.Preempted as e:
    print(f"research.sweeps.group_child: {e}", file=sys.stderr)
    return e.exit_code
  for name, summary in zip(args.runs, summaries):
    print(json.dumps({'run': name, 'steps': summary['steps'],
                      **{f'test_{m}': round(summary['final']['test'][m], 4)
                         for m in ('accuracy', 'rmse', 'return')
                         if m in summary['final']['test']}}))
  return 0


if __name__ == '__main__':
  sys.exit(main())

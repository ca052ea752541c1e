"""The FLOPs a run reports on resident data come from the program it dispatches (a loop of steps
that XLA's cost analysis counts once): they must equal one step's count, as lowered on its own."""
import numpy as np
import pytest

from research import config as config_lib
from research.run import parts, single_run


def test_the_dispatched_programs_count_is_one_steps(data_dir):
  config = config_lib.load('configs/default.py')
  config_lib.apply_overrides(config, ['total_steps=4', 'num_devices=1'])
  config.dataset.data_dir = data_dir
  run = single_run.SingleRun(parts.build(config))
  assert run.steps.is_resident
  state, _ = run.train(run.place(run.init_state()), np.ones(1, bool), 2)
  dispatched = run.flops_per_step(state)
  alone = run.steps.flops_per_step(state, run._first_batch, stacked=False)  # pylint: disable=protected-access
  assert dispatched == pytest.approx(alone, rel=1e-3)  # The loop's own counter adds a few.
  assert alone > 1e6

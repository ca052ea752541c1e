"""Every shipped config trains through the runner: its loss falls well below the start.

Each config runs 40 steps (ResNet, whose residual branches start at zero, and the GRU, which
starts from PyTorch's small uniform weights: 80) at its own learning
rate (no warmup, constant schedule) on one device; the training loss of the last 5 steps must be
under `FRACTION` of the first step's. The full
runs and their results are in the README; this only guards that each family still learns.
"""
import json

import pytest

import research
from research import config as config_lib

FRACTION = 0.7
# default.py trains to >= 97% through the CLI on 1 and 8 devices in test_train.py; gpt_addition.py
# trains there too (checkpoint, then generation), and gpt_fsdp.py (built on it) in
# test_sharding.py; the rest have no other end-to-end run.
CONFIGS = ['cnn_digits.py', 'mnist1d_cnn.py', 'mnist1d_gru.py', 'resnet_digits.py',
           'vgg_digits.py', 'vit_digits.py', 'wavenet_tones.py', 'bert_addition.py']
STEPS = {'resnet_digits.py': 80, 'mnist1d_gru.py': 80}


@pytest.mark.slow
@pytest.mark.parametrize('name', CONFIGS)
def test_config_learns_in_a_few_dozen_steps(tmp_path, name):
  steps = STEPS.get(name, 40)
  config = config_lib.load(f'configs/{name}')
  config_lib.apply_overrides(config, [
      f'total_steps={steps}', f'eval_every={steps}', 'log_every=1', 'num_devices=1',
      "optimizer.schedule='constant'", 'optimizer.warmup_steps=0'])
  research.train_and_evaluate(config, str(tmp_path))
  rows = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  losses = [r['loss'] for r in rows if r['split'] == 'train']
  assert len(losses) == steps
  first, last = losses[0], sum(losses[-5:]) / 5
  assert last < FRACTION * first, (name, first, last)

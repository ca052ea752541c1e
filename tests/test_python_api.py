"""The README's Python API snippet runs as written, for an MLP and for a BatchNorm model (ResNet).

The snippet is taken from README.md itself (the python block that calls `load_run`), so a
README edit that breaks it fails here. `run.batch` must give the inputs exactly as evaluation
feeds them: predicting a whole split from them reproduces `evaluate_workdir`'s accuracy.
"""
import contextlib
import io
import re

import numpy as np
import pytest

import research
from conftest import ROOT, run_cli
from research.errors import UserError

README_WORKDIR = "'workdirs/default'"
RUNS = {
    'mlp': ['--config', 'configs/default.py', '--config.total_steps=4'],
    'resnet': ['--config', 'configs/resnet_digits.py', '--config.total_steps=2',
               '--config.optimizer.warmup_steps=1', '--config.model.width=4'],
}


def readme_snippet() -> str:
  blocks = re.findall(r'```python\n(.*?)```', (ROOT / 'README.md').read_text(), re.DOTALL)
  snippet, = [block for block in blocks if 'load_run' in block]
  return snippet


@pytest.fixture(scope='module', params=sorted(RUNS))
def workdir(request, tmp_path_factory) -> str:
  path = tmp_path_factory.mktemp(request.param) / 'w'
  result = run_cli('train', *RUNS[request.param], '--workdir', str(path))
  assert result.returncode == 0, result.stderr[-3000:]
  return str(path)


def test_the_readme_python_snippet_runs(workdir):
  snippet = readme_snippet()
  assert README_WORKDIR in snippet and 'images' not in snippet
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    exec(snippet.replace(README_WORKDIR, repr(workdir)), {})  # pylint: disable=exec-used
  assert printed.getvalue().strip(), 'the snippet shows nothing'


def test_batch_and_predict_reproduce_the_evaluation_and_refuse_bad_arguments(workdir):
  run = research.load_run(workdir)
  inputs, labels = run.batch('test', size=1000)  # More than the split: all 360, no padding.
  assert inputs.shape == (360, 8, 8, 1) and inputs.dtype == np.float32 and labels.shape == (360,)
  assert 0.0 <= inputs.min() and inputs.max() <= 1.0  # digits' 0..16 counts / 16.
  logits = run.predict(inputs)
  evaluated = research.evaluate_workdir(workdir, 'test')
  assert evaluated['count'] == 360
  assert np.isclose((logits.argmax(-1) == labels).mean(), evaluated['accuracy'], atol=1e-6)
  first, _ = run.batch('test', size=8)
  np.testing.assert_array_equal(first, inputs[:8])
  assert ('batch_stats' in run.variables) == (run.config.model.name == 'resnet')
  with pytest.raises(UserError, match="unknown split 'dev'"):
    run.batch('dev')
  with pytest.raises(UserError, match='size must be a positive integer'):
    run.batch('test', size=0)

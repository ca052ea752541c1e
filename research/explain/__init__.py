"""Understanding a trained run: attributions, attention maps, activation statistics, robustness.

    import research
    from research import explain
    run = research.load_run('workdirs/default')
    inputs, labels = run.batch('test', size=8)
    result = explain.explain(run, inputs, labels, explain.Options(robustness=True))
    result.attributions['integrated_gradients']   # shaped like inputs

`research explain --workdir DIR` does the same and writes DIR/explain/ (workdir.py). The parts:
attribution.py (saliency, SmoothGrad, integrated gradients, occlusion on any score function),
target.py (the score a run's attribution explains), attention.py (captured weights, rollout),
activations.py (per-layer statistics), robustness.py (accuracy under noise, occlusion, FGSM/PGD),
compute.py (all of it on a run's examples, with the sanity measures), output.py (figures, JSON,
Markdown), methods.py (the method names, without JAX). Entry points are imported lazily, so that
the CLI can check method names before JAX starts.
"""
import importlib

_ENTRY_POINTS = {
    'Explanation': 'research.explain.compute',
    'Options': 'research.explain.compute',
    'attribute': 'research.explain.compute',
    'explain': 'research.explain.compute',
    'explain_workdir': 'research.explain.workdir',
    'ATTRIBUTIONS': 'research.explain.methods',
    'METHODS': 'research.explain.methods',
}
__all__ = list(_ENTRY_POINTS)


def __getattr__(name):
  if name in _ENTRY_POINTS:
    return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
  raise AttributeError(f"module 'research.explain' has no attribute {name!r}")

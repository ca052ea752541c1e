"""Understanding a trained run: attributions, attention maps, activation statistics, robustness.

    import research
    from research.explain import compute
    run = research.load_run('workdirs/default')
    inputs, labels = run.batch('test', size=8)
    result = compute.explain(run, inputs, labels, compute.Options(robustness=True))
    result.attributions['integrated_gradients']   # shaped like inputs

`research explain --workdir DIR` does the same and writes DIR/explain/ (workdir.py). The parts:
attribution.py (saliency, SmoothGrad, integrated gradients, occlusion on any score function),
target.py (the score a run's attribution explains), attention.py (captured weights, rollout),
activations.py (per-layer statistics), robustness.py (accuracy under noise, occlusion, FGSM/PGD),
compute.py (all of it on a run's examples, with the sanity measures), output.py (figures, JSON,
Markdown), methods.py (the method names, without JAX). This file imports nothing, so that the CLI
can check method names (methods.py) before JAX starts.
"""

"""Pure JAX, no files and no host state: the training and evaluation steps, losses, metric sums,
tasks (what a model is trained to predict), optimizers, micro-batching, byte tokens and sampling."""

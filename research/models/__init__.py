"""Model registry: `model.name` in a config → a pure Flax Linen module.

Each family lives in its own module and exposes `from_config(model_cfg, ctx)` (ctx: a
`Context` with the output size, input shape, computation dtype and BatchNorm axis) and
`validate(model_cfg)`, both reading a complete model group: every field of the family, with the
defaults of research/config/schema.py where the config does not set one (`complete`). Every
model is called as `model.apply(variables, inputs, train=...)` and
returns float32 logits: [batch, outputs] for classifiers, [batch, length, vocab] for token models
({'logits', 'paddings'} per output frame for speech: deepspeech).
Models with BatchNorm keep running statistics in the `batch_stats` collection.
"""
import jax
import ml_collections
from flax import linen as nn

from research.config import schema
from research.errors import unknown
from research.models import bert, cnn, deepspeech, gpt, gru, linear, mlp, resnet, vgg, vit
from research.models import wavenet
from research.models.context import Context

FAMILIES = {
    'linear': linear,
    'mlp': mlp,
    'cnn': cnn,
    'resnet': resnet,
    'vgg': vgg,
    'vit': vit,
    'gru': gru,
    'wavenet': wavenet,
    'bert': bert,
    'gpt': gpt,
    'deepspeech': deepspeech,
}


def _family(model_cfg: ml_collections.ConfigDict):
  if model_cfg.name not in FAMILIES:
    raise unknown('model', model_cfg.name, FAMILIES)
  return FAMILIES[model_cfg.name]


def complete(model_cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The model group with its family's schema defaults for the fields it does not set (a copy;
  an unknown family is refused)."""
  _family(model_cfg)
  return ml_collections.ConfigDict(schema.complete_model(model_cfg.to_dict()))


def validate(model_cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The completed model group; UserError for an unknown model name or a bad hyper-parameter.
  The one check of a model's fields: `build` runs it, and a sweep's up-front check calls it."""
  model_cfg = complete(model_cfg)
  _family(model_cfg).validate(model_cfg)
  return model_cfg


def build(model_cfg: ml_collections.ConfigDict, ctx: Context) -> nn.Module:
  """The model of a (possibly partial) model group: completed, validated, then built."""
  model_cfg = validate(model_cfg)
  return _family(model_cfg).from_config(model_cfg, ctx)


# Families whose nn.Conv layers XLA:CPU runs several times slower inside a compiled loop of steps
# than in a step of their own (DESIGN.md; WaveNet's every-config test went from ~75 s to 456 s
# when its data became device-resident). The cnn family's '1d' and 'minatar' variants use
# matmul convolutions (cnn.py) and loop well.
SLOW_IN_CPU_LOOPS = ('resnet', 'vgg', 'wavenet', 'deepspeech')


def loops_well(model_cfg: ml_collections.ConfigDict) -> bool:
  """Whether a model keeps its speed inside a loop of steps on the current JAX backend: the
  device-resident data path's 'auto' placement asks (research/data/resident.py)."""
  if jax.default_backend() != 'cpu':
    return True
  if model_cfg.name == 'cnn':
    return complete(model_cfg).variant != 'lenet'
  return model_cfg.name not in SLOW_IN_CPU_LOOPS

"""Model registry: `model.name` in a config → a pure Flax Linen module.

Each family lives in its own module and exposes `from_config(model_cfg, num_classes)` and
`validate(model_cfg)`. Every model is called as `model.apply(variables, inputs, train=...)` and
returns logits of shape [batch, num_classes].
"""
import ml_collections
from flax import linen as nn

from research.errors import unknown
from research.models import linear, mlp

FAMILIES = {
    'linear': linear,
    'mlp': mlp,
}


def _family(model_cfg: ml_collections.ConfigDict):
  if model_cfg.name not in FAMILIES:
    raise unknown('model', model_cfg.name, FAMILIES)
  return FAMILIES[model_cfg.name]


def validate(model_cfg: ml_collections.ConfigDict) -> None:
  """Raises UserError for an unknown model name or a bad hyper-parameter."""
  _family(model_cfg).validate(model_cfg)


def build(model_cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  return _family(model_cfg).from_config(model_cfg, num_classes)

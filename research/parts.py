"""Checking a whole config before anything runs: what a sweep does for every expanded run.

`config.validate` checks the shared settings and imports no registry. The registries (models,
optimizers, losses, tasks, sharding rules) check their own fields, each in one place, and they
do it while they build (`experiment.build`), so a run consults each registry once. `check` runs
those same checks on a config without preparing data or computing anything with JAX: the model
fields are checked without the dataset's shapes (those are checked when the model is built),
the optimizer's without a step count.
"""
import ml_collections

from research import config as config_lib


def check(config: ml_collections.ConfigDict) -> None:
  """Raises UserError for anything in `config` that a run would refuse before its data is read."""
  from research import losses, models, optim, sharding, tasks  # pylint: disable=g-import-not-at-top
  config_lib.validate(config)
  full = ml_collections.ConfigDict(config_lib.with_defaults(config.to_dict()))
  losses.get(full.loss, full.label_smoothing)
  tasks.create(full)
  models.validate(full.model)
  optim.validate(full.optimizer)
  sharding.rules_from_config(full)

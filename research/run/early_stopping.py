"""Early stopping on a validation metric, with patience.

The decision is a pure function of the validation history, so a resumed run replays the rows of
`metrics.jsonl` up to its checkpoint and reaches the same decision as an uninterrupted run.
"""
import dataclasses
import math


@dataclasses.dataclass
class EarlyStopping:
  """Tracks the best value of `metric`; `update` says when `patience` evaluations passed
  without an improvement of at least `min_delta`. `patience=0` never stops."""
  metric: str = 'accuracy'
  patience: int = 0
  mode: str = 'auto'
  min_delta: float = 0.0
  best: float | None = None
  best_step: int | None = None
  evals_since_best: int = 0

  @property
  def minimize(self) -> bool:
    return self.mode == 'min' or (self.mode == 'auto' and 'loss' in self.metric)

  def update(self, step: int, metrics: dict) -> bool:
    """Records one validation result; returns True when training should stop."""
    if self.patience <= 0 or self.metric not in metrics:
      return False
    value = float(metrics[self.metric])
    sign = -1.0 if self.minimize else 1.0
    if self.best is None or (not math.isnan(value)
                             and sign * (value - self.best) > self.min_delta):
      self.best, self.best_step, self.evals_since_best = value, step, 0
      return False
    self.evals_since_best += 1
    return self.evals_since_best >= self.patience

  def state(self) -> dict:
    return {'metric': self.metric, 'best': self.best, 'best_step': self.best_step}


def from_config(config) -> EarlyStopping:
  cfg = config.early_stopping
  return EarlyStopping(metric=cfg.metric, patience=cfg.patience, mode=cfg.mode,
                       min_delta=cfg.min_delta)

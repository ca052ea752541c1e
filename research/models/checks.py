"""Checks on model hyper-parameters from `config.model`; each raises UserError naming the field.

Callers read the value themselves (each family has its own defaults), so the checks take values.
"""
from typing import Any, Mapping

from research.errors import UserError, unknown


def dropout_rate(rate: Any) -> float:
  """Returns `rate` if it is a number in [0, 1) (not a bool)."""
  if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
    raise UserError(f"config.model.dropout_rate must be in [0, 1), got {rate!r}")
  return rate


def positive_int(field: str, value: Any, minimum: int = 1) -> int:
  """Returns `value` of config.model.<field> if it is an int >= minimum (not a bool)."""
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise UserError(f"config.model.{field} must be an int >= {minimum}, got {value!r}")
  return value


def table_key(value: Any, table: Mapping) -> Any:
  """`value` as a key of `table` ('18' and 18 alike), or None when it is not one."""
  if isinstance(value, str) and value.strip().isdigit():
    value = int(value)
  if isinstance(value, bool):
    return None
  return value if value in table else None


def table_choice(field: str, value: Any, table: Mapping) -> Any:
  """The key of `table` that config.model.<field> names ('18' and 18 alike); else UserError."""
  key = table_key(value, table)
  if key is None:
    raise unknown(f'config.model.{field}', value, table)
  return key

"""Operations with parameters written as config strings: 'name' or 'name:key=value,key=value'.

`config.augment` is a tuple of such strings and `config.optimizer.args` a tuple of 'key=value'
strings: plain values that config.json, `--config.augment="('crop:pad=1', 'flip')"` overrides and
sweep axes all hold without a nested group per operation. Values are Python literals (`1`, `0.5`,
`True`, `(4, 4)`), anything else a string.
"""
import ast
from typing import Any

from research.errors import UserError


def literal(raw: str) -> Any:
  try:
    return ast.literal_eval(raw.strip())
  except (ValueError, SyntaxError):
    return raw.strip()


def pairs(items, where: str) -> dict[str, Any]:
  """{'key': value} from 'key=value' strings (or one comma-separated string)."""
  if isinstance(items, str):
    items = [p for p in _split(items) if p.strip()]
  out = {}
  for item in items:
    key, sep, raw = str(item).partition('=')
    if not sep or not key.strip().isidentifier():
      raise UserError(f"{where}: {item!r} is not 'key=value'")
    out[key.strip()] = literal(raw)
  return out


def parse(spec: str, where: str) -> tuple[str, dict[str, Any]]:
  """('name', {key: value}) of 'name:key=value,...'."""
  if not isinstance(spec, str) or not spec.strip():
    raise UserError(f"{where}: {spec!r} is not an operation ('name' or 'name:key=value,...')")
  name, _, rest = spec.partition(':')
  return name.strip(), pairs(rest, where) if rest.strip() else {}


def _split(text: str) -> list[str]:
  """Splits at commas outside brackets, so 'size=(4, 4),p=0.5' gives two pairs."""
  parts, depth, current = [], 0, ''
  for char in text:
    depth += char in '([{'
    depth -= char in ')]}'
    if char == ',' and depth == 0:
      parts.append(current)
      current = ''
    else:
      current += char
  return parts + [current]


def rules(items, where: str) -> list[tuple[str, float]]:
  """[(regex, factor)] from 'REGEX=FACTOR' strings (split at the last '=')."""
  out = []
  for item in items:
    pattern, sep, raw = str(item).rpartition('=')
    value = literal(raw) if sep else None
    if not sep or not pattern or isinstance(value, bool) or not isinstance(value, (int, float)):
      raise UserError(f"{where}: {item!r} is not 'REGEX=FACTOR' with a number FACTOR")
    out.append((pattern, float(value)))
  return out

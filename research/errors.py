"""The one exception type that means "the user asked for something we cannot do".

Anything raised as `UserError` is reported by the CLI as a single line and exit code 2, without
a traceback; every other exception is a failure during the run (exit code 1).
"""
import difflib
from typing import Iterable


class UserError(Exception):
  """Bad input: a config value, a dataset name, a workdir, a batch size."""


def closest(name: str, allowed: Iterable[str]) -> str:
  """Returns ' (did you mean X?)' for the closest allowed name, or '' when none is close."""
  match = difflib.get_close_matches(str(name), [str(a) for a in allowed], n=1, cutoff=0.5)
  return f" (did you mean {match[0]!r}?)" if match else ""


def unknown(kind: str, name: str, allowed: Iterable[str]) -> UserError:
  """An error for an unknown name, listing what is allowed and the closest match."""
  allowed = sorted(str(a) for a in allowed)
  return UserError(f"unknown {kind} {name!r}{closest(name, allowed)}; allowed: {', '.join(allowed)}")

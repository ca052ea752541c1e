"""The names of `research explain`'s methods, and parsing a request for some (imports no JAX, so
the CLI checks a typo'd method before start-up)."""
from research.errors import unknown

ATTRIBUTIONS = ('saliency', 'smoothgrad', 'integrated_gradients', 'occlusion')
METHODS = ATTRIBUTIONS + ('attention', 'activations')


def parse(names) -> tuple | None:
  """Method names (a list, or comma-separated strings) → a tuple; None or empty: all that apply."""
  if not names:
    return None
  methods = []
  for name in (n.strip() for item in names for n in str(item).split(',')):
    if name and name not in METHODS:
      raise unknown('explain method', name, METHODS)
    if name and name not in methods:
      methods.append(name)
  return tuple(methods) or None

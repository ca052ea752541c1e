"""The figures of `research explain` (DIR/explain/*.png), from arrays: no JAX, no workdir reads.

- `attribution_figure`: one row per example; the input, then one panel per method. Attributions
  are drawn in a diverging colour map (red raises the explained output, blue lowers it; the
  colour range is symmetric, per panel): for images with the input's outline over them, for 1-D
  signals as a strip behind the signal's line.
- `attention_figure`: one example's attention per layer (rows) and head (columns), then the
  rollout; axes labelled by the example's tokens.
- `activation_figure`: a histogram per layer, titled with its mean, std and dead / saturated share.
- `robustness_figure`: accuracy against each perturbation's size, one panel per kind.
Drawn on matplotlib's Agg canvas directly (no pyplot, no display).
"""
import pathlib

import numpy as np
from matplotlib import figure

CMAP = 'RdBu_r'


def _new(width: float, height: float) -> figure.Figure:
  return figure.Figure(figsize=(width, height), dpi=90, layout='constrained')


def save(fig: figure.Figure, path: pathlib.Path) -> pathlib.Path:
  fig.savefig(path)
  return path


def _view(values, combine) -> np.ndarray:
  """One example [*positions]: channels (the last axis of a rank >= 2 example) combined."""
  values = np.asarray(values, np.float32)
  return values if values.ndim == 1 else combine(values, axis=-1)


def _draw_image(ax, image: np.ndarray, attr: np.ndarray | None) -> None:
  """The input in grey; with an attribution, the attribution map with the input's outline (a
  contour at half its range) drawn over it, so that both stay readable."""
  if attr is None:
    ax.imshow(image, cmap='gray_r', interpolation='nearest')
  else:
    bound = float(np.abs(attr).max()) or 1.0
    ax.imshow(attr, cmap=CMAP, vmin=-bound, vmax=bound, interpolation='nearest')
    low, high = float(image.min()), float(image.max())
    if high > low:
      ax.contour(image, levels=[(low + high) / 2], colors='black', linewidths=0.8)
  ax.set_xticks([])
  ax.set_yticks([])


def _draw_signal(ax, signal: np.ndarray, attr: np.ndarray | None) -> None:
  low, high = float(signal.min()), float(signal.max())
  pad = 0.05 * (high - low or 1.0)
  if attr is not None:
    bound = float(np.abs(attr).max()) or 1.0
    ax.imshow(attr[None, :], cmap=CMAP, vmin=-bound, vmax=bound, aspect='auto',
              extent=(-0.5, len(signal) - 0.5, low - pad, high + pad), alpha=0.8)
  ax.plot(np.arange(len(signal)), signal, color='black', linewidth=1)
  ax.set_xlim(-0.5, len(signal) - 0.5)
  ax.set_ylim(low - pad, high + pad)
  ax.set_yticks([])


def attribution_figure(inputs: np.ndarray, maps: dict, row_titles: list[str]) -> figure.Figure:
  """`inputs` [n, ...]; `maps` {method: attributions shaped like inputs}; one title per row."""
  n, columns = len(inputs), 1 + len(maps)
  is_image = inputs.ndim >= 4
  fig = _new(2.0 * columns if is_image else 3.0 * columns, (1.9 if is_image else 1.3) * n + 0.4)
  axes = fig.subplots(n, columns, squeeze=False)
  for i in range(n):
    panels = [('input', None)] + [(m, a[i]) for m, a in maps.items()]
    for j, (name, attr) in enumerate(panels):
      ax = axes[i, j]
      shown = _view(inputs[i], np.mean)
      attr = None if attr is None else _view(attr, np.sum)
      (_draw_image if shown.ndim == 2 else _draw_signal)(ax, shown, attr)
      if i == 0:
        ax.set_title(name, fontsize=9)
      if j == 0:
        ax.set_ylabel(row_titles[i], fontsize=8)
  return fig


def attention_figure(layers: dict, rollout: np.ndarray, tokens: list[str],
                     title: str) -> figure.Figure:
  """`layers` {layer: weights [heads, T, T]} of one example; `rollout` [T, T]; T token labels."""
  heads = max(w.shape[0] for w in layers.values())
  rows = len(layers) + 1
  fig = _new(2.3 * heads + 0.6, 2.3 * rows + 0.5)
  axes = fig.subplots(rows, heads, squeeze=False)
  ticks = np.arange(len(tokens))

  def draw(ax, matrix, name):
    image = ax.imshow(matrix, cmap='viridis', vmin=0, vmax=max(float(matrix.max()), 1e-6))
    ax.set_title(name, fontsize=8)
    ax.set_xticks(ticks, tokens, fontsize=6)
    ax.set_yticks(ticks, tokens, fontsize=6)
    return image

  for r, (name, weights) in enumerate(layers.items()):
    for h in range(heads):
      if h < weights.shape[0]:
        draw(axes[r, h], weights[h], f'layer {r} · head {h}')
      else:
        axes[r, h].set_axis_off()
    axes[r, 0].set_ylabel(name, fontsize=6)  # The layer's module path, e.g. decoder/block_0/...
  image = draw(axes[-1, 0], rollout, 'attention rollout (all layers)')
  fig.colorbar(image, ax=axes[-1, 0], shrink=0.8)
  for h in range(1, heads):
    axes[-1, h].set_axis_off()
  fig.suptitle(f'{title}   (rows: query position; columns: key position)', fontsize=9)
  return fig


def activation_figure(stats: list) -> figure.Figure:
  """One histogram per layer from research.explain.activations.LayerStats."""
  fig = _new(3.4 * max(1, len(stats)), 3.0)
  axes = fig.subplots(1, max(1, len(stats)), squeeze=False)[0]
  for ax, layer in zip(axes, stats):
    ax.hist(layer.sample, bins=50, color='tab:blue')
    extra = ''
    if layer.dead_fraction is not None:
      extra = f'\ndead units {layer.dead_fraction:.1%}'
    if layer.saturated_fraction is not None:
      extra = f'\nsaturated {layer.saturated_fraction:.1%}'
    ax.set_title(f'{layer.layer} ({layer.activation})\nmean {layer.mean:.3g}, '
                 f'std {layer.std:.3g}{extra}', fontsize=8)
    ax.set_xlabel('activation value', fontsize=8)
    ax.set_yscale('log')
  axes[0].set_ylabel('count (log scale)', fontsize=8)
  return fig


def robustness_figure(result: dict, kinds: dict, title: str) -> figure.Figure:
  """Accuracy vs size, one panel per kind ({kind: x-axis label}); a dashed line at chance."""
  fig = _new(3.3 * len(kinds), 3.0)
  axes = fig.subplots(1, len(kinds), squeeze=False)[0]
  for ax, (kind, label) in zip(axes, kinds.items()):
    curve = result[kind]
    ax.plot(curve['levels'], curve['accuracy'], marker='o')
    if result.get('chance'):
      ax.axhline(result['chance'], color='grey', linestyle='--', linewidth=1)
    ax.set_xlabel(label, fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel('accuracy', fontsize=8)
  fig.suptitle(title, fontsize=9)
  return fig

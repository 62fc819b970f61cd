"""Figure 2, live: clean clusters in 2-D and attacked digits migrating between them as eps grows (Plotly)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from explorer.latent.projection import Projection
from explorer.latent.trajectories import Trajectories

# Tableau's ten: distinct for ten classes, and the adversarial points reuse them for the class they are taken for.
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
FRAME_MS = 700
SPACING = 0.05  # between panels, as a fraction of the figure's width
UNKNOWN = -1  # the test-set index of a digit that is not from the test set (an upload or a drawing)
DIGITS = tuple(str(digit) for digit in range(10))


@dataclass(frozen=True)
class Panel:
    """One model's view: its clean reference digits and the attacked digits, both already in 2-D."""

    title: str
    points: np.ndarray  # (M, 2) clean reference digits
    point_labels: np.ndarray  # (M,)
    point_indices: np.ndarray  # (M,) test-set indices
    eps: np.ndarray  # (E,)
    paths: np.ndarray  # (E, N, 2) the attacked digits at each eps; eps 0 is the clean digit
    predictions: np.ndarray  # (E, N)
    labels: np.ndarray  # (N,)
    indices: np.ndarray  # (N,) test-set indices, UNKNOWN for uploads and drawings
    class_names: tuple[str, ...] = DIGITS  # the dataset's, for the legend, the cluster labels and the hovers
    item: str = "digit"  # what one image is called: "digit", or "image" for clothing


def panel(title: str, view: Projection, reference_labels: np.ndarray, reference_indices: np.ndarray,
          moved: Trajectories, indices: np.ndarray, class_names: tuple[str, ...] = DIGITS,
          item: str = "digit") -> Panel:
    """One model's panel: its reference digits as fitted, and the attacked ones placed in the same view."""
    n_eps, n, dims = moved.embeddings.shape
    paths = view.transform(moved.embeddings.reshape(-1, dims)).reshape(n_eps, n, 2)
    return Panel(title, view.coordinates, reference_labels, reference_indices, moved.eps, paths, moved.predictions,
                 moved.labels, indices, class_names, item)


def digit_name(index: int, item: str = "digit") -> str:
    return f"your {item}" if index == UNKNOWN else f"test #{index}"


def axis_range(values: np.ndarray) -> list[float]:
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low or 1.0)
    return [low - pad, high + pad]


def axes_of(column: int) -> dict[str, str]:
    suffix = str(column) if column > 1 else ""
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


def frame_traces(panel: Panel, step: int, column: int) -> list[dict]:
    """The moving part at eps[step]: each digit's path from its clean position, and where it is now."""
    axes = axes_of(column)
    path_x: list[float | None] = []
    path_y: list[float | None] = []
    for digit in range(panel.paths.shape[1]):
        path_x += [*panel.paths[: step + 1, digit, 0].tolist(), None]
        path_y += [*panel.paths[: step + 1, digit, 1].tolist(), None]
    eps = float(panel.eps[step])
    predicted = panel.predictions[step]
    names = panel.class_names
    hover = [f"{digit_name(int(i), panel.item)}: true {names[int(y)]}, taken for {names[int(p)]} at eps {eps:.2f}"
             for i, y, p in zip(panel.indices, panel.labels, predicted, strict=True)]
    return [
        {"type": "scatter", "x": path_x, "y": path_y, "mode": "lines",
         "line": {"color": "rgba(40,40,40,0.55)", "width": 1.5}, "hoverinfo": "skip", "showlegend": False, **axes},
        {"type": "scatter", "x": panel.paths[step, :, 0], "y": panel.paths[step, :, 1], "mode": "markers",
         "marker": {"color": [CLASS_COLOURS[int(p)] for p in predicted], "size": 13, "symbol": "diamond",
                    "line": {"color": "black", "width": 1.5}},
         "name": f"attacked {panel.item} (colour: class it is taken for)", "legendgroup": "attacked",
         "showlegend": column == 1, "hovertext": hover, "hoverinfo": "text", "customdata": panel.indices[:, None],
         **axes},
    ]


def migration_figure(panels: list[Panel], start_step: int = 0, paper_style: bool = False) -> go.Figure:
    """Panels side by side; the eps slider and the Play button under them move every panel's attacked digits."""
    # Built as plain dicts and validated once: adding traces and annotations one by one costs Plotly ten times more.
    width = (1 - SPACING * (len(panels) - 1)) / len(panels)
    layout: dict = {}
    traces: list[dict] = []
    titles: list[dict] = []
    labels: list[dict] = []
    moving: list[int] = []
    hidden = {"showticklabels": False, "showgrid": False, "zeroline": False}
    for column, panel in enumerate(panels, start=1):
        axes = axes_of(column)
        for digit_class, class_name in enumerate(panel.class_names):
            chosen = panel.point_labels == digit_class
            traces.append({
                "type": "scatter", "x": panel.points[chosen, 0], "y": panel.points[chosen, 1], "mode": "markers",
                "name": class_name, "legendgroup": class_name, "showlegend": column == 1,
                "marker": {"color": CLASS_COLOURS[digit_class], "size": 5, "opacity": 0.35},
                "customdata": panel.point_indices[chosen, None],
                "hovertemplate": f"test #%{{customdata[0]}}: {class_name}<extra></extra>", **axes})
            centre = np.median(panel.points[chosen], axis=0)
            # Beside the cluster, not on it: a label in the cluster's own colour vanishes on top of it.
            labels.append({"x": centre[0], "y": centre[1], "text": f"<b>{class_name}</b>", "showarrow": False,
                           "font": {"size": 16, "color": CLASS_COLOURS[digit_class]}, "yshift": 18,
                           "bgcolor": "rgba(255,255,255,0.75)", "xref": axes["xaxis"], "yref": axes["yaxis"]})
        traces.append({
            "type": "scatter", "x": panel.paths[0, :, 0], "y": panel.paths[0, :, 1], "mode": "markers",
            "name": f"clean {panel.item} (start)", "legendgroup": "clean", "showlegend": column == 1,
            "marker": {"color": "white", "size": 11, "symbol": "circle", "line": {"color": "black", "width": 2}},
            "hovertext": [f"{digit_name(int(i), panel.item)}: true {panel.class_names[int(y)]}, clean"
                          for i, y in zip(panel.indices, panel.labels, strict=True)],
            "hoverinfo": "text", "customdata": panel.indices[:, None], **axes})
        for trace in frame_traces(panel, start_step, column):
            moving.append(len(traces))
            traces.append(trace)
        everything = np.concatenate([panel.points, panel.paths.reshape(-1, 2)])
        left = (column - 1) * (width + SPACING)
        layout[axes["xaxis"].replace("x", "xaxis")] = {"domain": [left, left + width], "anchor": axes["yaxis"],
                                                       "range": axis_range(everything[:, 0]), **hidden}
        layout[axes["yaxis"].replace("y", "yaxis")] = {"domain": [0, 1], "anchor": axes["xaxis"],
                                                       "range": axis_range(everything[:, 1]), **hidden}
        titles.append({"text": panel.title, "x": left + width / 2, "y": 1, "xref": "paper", "yref": "paper",
                       "xanchor": "center", "yanchor": "bottom", "showarrow": False, "font": {"size": 16}})

    eps = panels[0].eps
    frames = [{"name": f"{value:.2f}", "traces": moving,
               "data": [trace for column, panel in enumerate(panels, start=1)
                        for trace in frame_traces(panel, step, column)]}
              for step, value in enumerate(eps)]
    still = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    layout.update(
        annotations=titles + labels,
        height=560 if paper_style else 520,
        margin={"t": 40, "b": 10, "l": 10, "r": 10},
        template="simple_white" if paper_style else "plotly_white",
        legend={"itemsizing": "constant", **({"x": 0.01, "y": 0.99, "bgcolor": "rgba(255,255,255,0.85)",
                                               "bordercolor": "black", "borderwidth": 1, "font": {"size": 13}}
                                              if paper_style else {"title": {"text": "class"}})},
        updatemenus=[{
            "type": "buttons", "direction": "left", "x": 0, "y": -0.02, "xanchor": "left", "yanchor": "top",
            "pad": {"t": 45, "r": 10}, "showactive": False,
            "buttons": [
                {"label": "▶ Play", "method": "animate",
                 "args": [None, {"frame": {"duration": FRAME_MS, "redraw": False}, "fromcurrent": True,
                                 "transition": {"duration": FRAME_MS // 2}}]},
                {"label": "❚❚ Pause", "method": "animate", "args": [[None], still]},
            ],
        }],
        sliders=[{
            "active": start_step, "x": 0.22, "len": 0.78, "y": -0.02, "yanchor": "top", "pad": {"t": 20},
            "currentvalue": {"prefix": "eps = ", "font": {"size": 15}},
            "steps": [{"label": f"{value:.2f}", "method": "animate", "args": [[f"{value:.2f}"], still]}
                      for value in eps],
        }],
    )
    figure = go.Figure(data=traces, layout=layout, frames=frames)
    return figure

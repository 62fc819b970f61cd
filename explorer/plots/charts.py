"""Plotly charts the app draws, of the committed results and of one digit under attack; a notebook can draw them too."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.evaluation.effort import AUTOATTACK_STANDARD_GRADIENTS, PRESET_GRADIENTS
from explorer.evaluation.ensemble import beyond_shares
from explorer.evaluation.table1 import EVALUATIONS

ATTACK_COLOURS = {"fgsm": "#636efa", "bim": "#ef553b", "mim": "#00cc96", "pgd": "#ab63fa"}
MODEL_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
PAPER_EPS = 0.3


def sweep_chart(sweeps: dict, model_names: list[str], preset: str) -> go.Figure:
    """Accuracy against eps, one panel per model, one line per attack, the paper's budget marked."""
    figure = make_subplots(rows=1, cols=len(model_names), shared_yaxes=True, subplot_titles=model_names,
                           horizontal_spacing=0.04)
    for column, name in enumerate(model_names, start=1):
        for kind, curve in sweeps["accuracy"][name][preset].items():
            figure.add_trace(go.Scatter(
                x=sweeps["eps"], y=[100 * v for v in curve], name=kind.upper(), legendgroup=kind,
                showlegend=column == 1, line={"color": ATTACK_COLOURS[kind], "width": 2.5},
                hovertemplate=f"{name}, {kind.upper()}<br>eps %{{x:.2f}}: %{{y:.1f}}% correct<extra></extra>"),
                row=1, col=column)
        figure.add_vline(x=PAPER_EPS, line={"dash": "dot", "color": "grey"}, row=1, col=column)
    figure.add_annotation(x=PAPER_EPS, y=100, xref="x", yref="y", text="paper's eps", showarrow=False,
                          xanchor="left", yanchor="bottom")
    figure.update_xaxes(title_text="eps (L-inf)", range=[0, max(sweeps["eps"])])
    figure.update_yaxes(title_text="accuracy (%)", range=[0, 102], row=1, col=1)
    figure.update_layout(height=380, margin={"t": 40, "b": 40, "l": 50, "r": 10}, legend_title_text="attack")
    return figure


def flip_histogram(sweeps: dict, model_names: list[str], preset: str) -> go.Figure:
    """How large a perturbation each model needs: per digit, the smallest eps at which some attack flips it."""
    grid = sweeps["eps"]
    never = grid[-1] + (grid[1] - grid[0])
    figure = go.Figure()
    bins = {"start": -0.01, "end": never + 0.01, "size": grid[1] - grid[0]}
    for name, colour in zip(model_names, MODEL_COLOURS[: len(model_names)], strict=True):
        values = [never if v is None else v for v in sweeps["smallest_flipping_eps"][name][preset]]
        figure.add_trace(go.Histogram(x=values, name=name, opacity=0.6, marker_color=colour, xbins=bins,
                                      hovertemplate=f"{name}: %{{y}} digits flip first at eps %{{x:.2f}}"
                                                    "<extra></extra>"))
    figure.add_vline(x=PAPER_EPS, line={"dash": "dot", "color": "grey"}, annotation_text="paper's eps")
    figure.update_layout(barmode="overlay", height=340, margin={"t": 30, "b": 40, "l": 50, "r": 10},
                         xaxis={"title": f"smallest flipping eps (rightmost bar: not flipped by {grid[-1]})",
                                "range": [-0.02, never + 0.02]},
                         yaxis={"title": "digits"})
    return figure


def loss_surface_chart(surfaces: dict[str, object], label: int) -> go.Figure:
    """One heat map per model of the cross-entropy over the slice x + a sign(g) + b r (`lens.Surface`), the clean
    digit at the centre, each point's predicted class on hover; white contour lines where the verdict changes."""
    figure = make_subplots(rows=1, cols=len(surfaces), subplot_titles=list(surfaces), horizontal_spacing=0.08)
    for column, surface in enumerate(surfaces.values(), start=1):
        figure.add_trace(go.Heatmap(
            x=surface.along_gradient.tolist(), y=surface.along_random.tolist(), z=surface.loss.tolist(),
            customdata=surface.prediction.tolist(),
            coloraxis="coloraxis",
            hovertemplate="a %{x:.2f}, b %{y:.2f}<br>loss %{z:.2f}<br>predicted %{customdata}<extra></extra>"),
            row=1, col=column)
        figure.add_trace(go.Contour(
            x=surface.along_gradient.tolist(), y=surface.along_random.tolist(),
            z=(surface.prediction != label).astype(float).tolist(),
            showscale=False, contours={"start": 0.5, "end": 0.5, "coloring": "none"},
            line={"color": "white", "width": 2}, hoverinfo="skip"), row=1, col=column)
        figure.add_trace(go.Scatter(x=[0], y=[0], mode="markers", marker={"symbol": "x", "color": "red", "size": 10},
                                    showlegend=False, hovertemplate="the clean digit<extra></extra>"),
                         row=1, col=column)
    figure.update_xaxes(title_text="a: along sign(gradient)")
    figure.update_yaxes(title_text="b: along a random sign direction", row=1, col=1)
    figure.update_layout(height=380, margin={"t": 40, "b": 40, "l": 50, "r": 10}, showlegend=False,
                         coloraxis={"colorscale": "Viridis", "colorbar": {"title": "cross-entropy"}})
    return figure


def margin_curves_chart(curves: dict[str, dict[str, Sequence[float]]]) -> go.Figure:
    """Per model, the margin (best other logit minus the true one) at each iterate of each attack; above the 0
    line the digit is fooled."""
    figure = make_subplots(rows=1, cols=len(curves), subplot_titles=list(curves), shared_yaxes=True,
                           horizontal_spacing=0.04)
    for column, (name, by_attack) in enumerate(curves.items(), start=1):
        for index, (attack, curve) in enumerate(by_attack.items()):
            figure.add_trace(go.Scatter(
                y=[float(v) for v in curve], name=attack, legendgroup=attack, showlegend=column == 1,
                line={"color": MODEL_COLOURS[index % len(MODEL_COLOURS)], "width": 2.5},
                hovertemplate=f"{name}, {attack}<br>iteration %{{x}}: margin %{{y:.2f}}<extra></extra>"),
                row=1, col=column)
        figure.add_hline(y=0, line={"dash": "dot", "color": "grey"}, row=1, col=column)
    figure.update_xaxes(title_text="iteration")
    figure.update_yaxes(title_text="margin (> 0: fooled)", row=1, col=1)
    figure.update_layout(height=340, margin={"t": 40, "b": 40, "l": 50, "r": 10}, legend_title_text="attack")
    return figure


EVALUATION_COLOURS = ("#bab0ac", "#9ecae1", "#4292c6", "#08306b")  # the paper's claim, then ours weakest first


def robustness_chart(rows: dict[str, dict[str, float | None]], flags: dict[str, str]) -> go.Figure:
    """Per model (rows: model -> evaluation -> robust accuracy in %, None where not yet measured, no entry where
    there is nothing to measure, as the paper's claim for a model it lacks), the paper's claim beside our three
    evaluations, weakest to strongest; `flags` notes per model (e.g. not converged)."""
    figure = go.Figure()
    for evaluation, colour in zip(EVALUATIONS, EVALUATION_COLOURS, strict=True):
        if not any(evaluation in row for row in rows.values()):
            continue
        values = [rows[model].get(evaluation) for model in rows]
        labels = ["not in the paper" if evaluation not in rows[model] else "not yet" if value is None
                  else f"{value:.1f}%" for model, value in zip(rows, values, strict=True)]
        figure.add_trace(go.Bar(
            y=list(rows), x=[v or 0 for v in values], name=evaluation, orientation="h", marker_color=colour,
            text=labels, textposition="outside",
            hovertemplate=f"%{{y}}<br>{evaluation}: %{{text}}<extra></extra>"))
    for model, note in flags.items():
        figure.add_annotation(y=model, x=100, text=note, showarrow=False, xanchor="right", yshift=-28,
                              font={"size": 11, "color": "#b2182b"})
    figure.update_layout(barmode="group", height=130 + 120 * len(rows), xaxis={"range": [0, 112],
                         "title": "robust accuracy at eps 0.3 (%)"}, yaxis={"autorange": "reversed"},
                         legend={"orientation": "h", "y": -0.15 - 0.25 / len(rows)},
                         margin={"t": 20, "b": 40, "l": 90, "r": 10})
    return figure


def broken_by_chart(shares: dict[str, dict[str, int]], digits: int) -> go.Figure:
    """Per model, which attack broke each digit first (shares: model -> attack -> count), as stacked bars."""
    figure = go.Figure()
    attacks_seen = list(dict.fromkeys(attack for share in shares.values() for attack in share))
    for index, attack in enumerate(attacks_seen):
        figure.add_trace(go.Bar(
            y=list(shares), x=[100 * shares[m].get(attack, 0) / digits for m in shares], name=attack,
            orientation="h", marker_color=(*MODEL_COLOURS, *ATTACK_COLOURS.values())[index % 8],
            hovertemplate=f"%{{y}}: {attack} broke %{{x:.1f}}% of the digits first<extra></extra>"))
    figure.update_layout(barmode="stack", height=110 + 50 * len(shares), yaxis={"autorange": "reversed"},
                         xaxis={"range": [0, 100], "title": "share of the test digits (%)"},
                         margin={"t": 20, "b": 40, "l": 90, "r": 10})
    return figure


def effort_chart(curves: dict[str, list[dict]]) -> go.Figure:
    """Robust accuracy against the gradient evaluations a digit was given (log scale), per model: its converged
    evaluation stage by stage as a line (clean, each attack, each round, Square), the presets' worst case as
    diamonds, and where the paper preset, the strong preset and AutoAttack's standard run stop."""
    figure = go.Figure()
    for index, (model, points) in enumerate(curves.items()):
        colour = MODEL_COLOURS[index % len(MODEL_COLOURS)]
        presets = [p for p in points if "preset" in p["stage"]]
        stages = [p for p in points if "preset" not in p["stage"]]
        figure.add_trace(go.Scatter(
            x=[p["gradients"] for p in stages], y=[100 * p["accuracy"] for p in stages], mode="lines+markers",
            name=f"{model}, converged evaluation", line={"color": colour}, text=[p["stage"] for p in stages],
            hovertemplate=f"{model}<br>%{{text}}: %{{y:.2f}}% after %{{x:,}} gradients a digit<extra></extra>"))
        figure.add_trace(go.Scatter(
            x=[p["gradients"] for p in presets], y=[100 * p["accuracy"] for p in presets], mode="markers",
            name=f"{model}, presets", marker={"color": colour, "symbol": "diamond", "size": 11},
            text=[p["stage"] for p in presets],
            hovertemplate=f"{model}<br>%{{text}}: %{{y:.2f}}%<extra></extra>"))
    stops = {"paper preset": PRESET_GRADIENTS["paper"], "strong preset": PRESET_GRADIENTS["strong"],
             "AutoAttack standard (+ Square)": AUTOATTACK_STANDARD_GRADIENTS}
    for label, gradients in stops.items():
        figure.add_vline(x=gradients, line={"dash": "dot", "color": "#888"})
        # an annotation on a log axis is placed by the logarithm of its value, a line by the value itself
        figure.add_annotation(x=math.log10(gradients), y=1, yref="paper", text=label, textangle=-90,
                              showarrow=False, xanchor="right", yanchor="top", font={"size": 11, "color": "#555"})
    largest = max([p["gradients"] for points in curves.values() for p in points] + list(stops.values()))
    figure.update_layout(height=460, xaxis={"type": "log", "title": "gradient evaluations a standing digit was given",
                                            "range": [-0.1, math.log10(largest) + 0.2]},
                         yaxis={"title": "robust accuracy at eps 0.3 (%)", "rangemode": "tozero"},
                         legend={"orientation": "h", "y": -0.2}, margin={"t": 20, "b": 40, "l": 60, "r": 10})
    return figure


def beyond_chart(rows: dict[str, dict]) -> go.Figure:
    """Robust accuracy a little past the evaluation's eps, per model (rows: name -> converged row with `beyond`):
    its converged figure at eps, then what is left after one APGD-CE run on the standing digits at each larger eps.
    A line that drops at once means the survivors sit on the edge of the budget."""
    figure = go.Figure()
    for index, (model, row) in enumerate(rows.items()):
        beyond, digits = row["beyond"], row["digits"]
        left = [beyond["standing"]] + [beyond["standing"] - broke for broke in beyond["broke"]]
        fell = [0.0, *beyond_shares(row)]
        figure.add_trace(go.Scatter(
            x=[row["eps"], *beyond["eps"]], y=[100 * n / digits for n in left], mode="lines+markers", name=model,
            line={"color": MODEL_COLOURS[index % len(MODEL_COLOURS)]}, customdata=[100 * f for f in fell],
            hovertemplate=f"{model}<br>eps %{{x}}: %{{y:.2f}}% left; %{{customdata:.0f}}% of the digits standing "
                          f"at {row['eps']} fell<extra></extra>"))
    figure.update_layout(height=360, xaxis={"title": "eps (L-inf)", "tickformat": ".3f"},
                         yaxis={"title": "robust accuracy (%)", "rangemode": "tozero"},
                         legend={"orientation": "h", "y": -0.25}, margin={"t": 20, "b": 40, "l": 60, "r": 10})
    return figure


def effort_spent_chart(rows: dict[str, dict]) -> go.Figure:
    """Where a converged evaluation's escalation spent its effort: per model (rows: name -> converged row with
    rounds), how many gradient evaluations each digit that entered the rounds was given, split by whether the
    rounds broke it. The digits nearest the boundary draw the restarts."""
    figure = make_subplots(rows=1, cols=len(rows), subplot_titles=list(rows), shared_yaxes=True)
    for column, row in enumerate(rows.values(), start=1):
        round_codes = {r["code"] for r in row["rounds"]}
        entered = [(budget, code in round_codes)
                   for budget, code in zip(row["escalation_budget"], row["broken_by"], strict=True) if budget > 0]
        for label, colour, broken in (("broken in the rounds", "#d62728", True), ("still standing", "#1f77b4", False)):
            figure.add_trace(go.Histogram(x=[b for b, was in entered if was == broken], name=label,
                                          marker_color=colour, showlegend=column == 1, legendgroup=label, nbinsx=30),
                             row=1, col=column)
        figure.update_xaxes(title_text="gradient evaluations in the rounds", row=1, col=column)
    figure.update_layout(barmode="stack", height=360, yaxis={"title": "digits"}, legend={"orientation": "h", "y": -0.3},
                         margin={"t": 40, "b": 40, "l": 60, "r": 10})
    return figure

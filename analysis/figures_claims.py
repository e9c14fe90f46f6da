"""The report's first figures: a forest plot per compared value (the effect per unit with
its interval, and the pooled effect with its CI and prediction interval, against the
margin) and a paired scatter (each pair of trials, baseline against other)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analysis.deltas import clusters
from analysis.figures import palette, plt, save
from analysis.inference import estimate, group_means

POINTS = 100  # AUROC is drawn in points (0.01 AUROC = 1 point)


def _unit_interval(pairs: list[dict[str, Any]]) -> tuple[float, float, float]:
    """One unit's mean delta and 95% t interval over its configurations (else pairs)."""
    labels, _ = clusters(pairs, unit=())
    est = estimate(list(group_means([p["y"] for p in pairs], labels).values()))
    mean = float(np.mean([p["y"] for p in pairs]))
    return mean, est.ci_low, est.ci_high


def _unit_order(label: str) -> tuple:
    return (0, int(label)) if label.lstrip("-").isdigit() else (1, label)


def _forest_panel(ax, claim: dict[str, Any], pairs: list[dict[str, Any]]) -> None:
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for p in pairs:
        by_unit.setdefault(str(p["unit"]), []).append(p)
    units = sorted(by_unit, key=_unit_order)
    margin = claim["margin"] * POINTS
    ax.axvspan(-margin, margin, color="tab:green", alpha=0.12, label=f"±margin ({margin:g})")
    ax.axvline(0, color="grey", ls="--", lw=1)
    for y, unit in enumerate(units, start=2):
        mean, low, high = _unit_interval(by_unit[unit])
        if np.isfinite(low):
            ax.plot([low * POINTS, high * POINTS], [y, y], color="tab:blue", lw=1.5)
        ax.plot(mean * POINTS, y, "s", color="tab:blue", ms=5)
    if np.isfinite(claim["pi_low"]):
        ax.plot([claim["pi_low"] * POINTS, claim["pi_high"] * POINTS], [0, 0], color="black",
                lw=1, ls=":", label="95% prediction interval (a new unit)")
    if np.isfinite(claim["ci_low"]):
        ax.plot([claim["ci_low"] * POINTS, claim["ci_high"] * POINTS], [0, 0], color="black",
                lw=3, label="pooled: 95% CI over units")
    ax.plot(claim["mean"] * POINTS, 0, "D", color="black", ms=8)
    ax.set_yticks([0, *range(2, len(units) + 2)], ["pooled", *units])
    ax.set_ylim(len(units) + 2.5, -1.2)
    ax.set_ylabel(claim["unit"].replace("dataset × ", ""))
    ax.set_xlabel(f"Δ AUROC points ({claim['value']} − {claim['baseline']}; right: "
                  f"{claim['value']} better)")
    ax.set_title(f"{claim['dataset']}: {claim['value']} vs {claim['baseline']} — "
                 f"{claim['verdict']} within ±{margin:g}")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8,
              frameon=False)


def forest(claims: list[dict[str, Any]], pairs: dict[tuple, list[dict[str, Any]]],
           path: Path) -> Path:
    """One panel per AUROC claim: per unit, the mean paired delta and its 95% t interval
    over the unit's configurations; the pooled mean with its CI over units and prediction
    interval; the margin shaded."""
    heights = [max(3.2, 0.32 * len({p["unit"] for p in pairs.get(_key(c), [])}) + 2.2)
               for c in claims]
    fig, axes = plt.subplots(len(claims), 1, figsize=(8.5, sum(heights)), squeeze=False,
                             layout="constrained", height_ratios=heights)
    for ax, claim in zip(axes[:, 0], claims, strict=True):
        _forest_panel(ax, claim, pairs.get(_key(claim), []))
    return save(fig, path)


def _key(claim: dict[str, Any]) -> tuple:
    return claim["scope"], claim["dataset"], claim["value"]


def paired_scatter(claims: list[dict[str, Any]], pairs: dict[tuple, list[dict[str, Any]]],
                   path: Path) -> Path:
    """One panel per AUROC claim: each pair of trials, baseline's AUROC (x) against the
    other's (y), coloured by unit; above the diagonal the other value detects better."""
    fig, axes = plt.subplots(1, len(claims), figsize=(5.6 * len(claims), 5.2), squeeze=False,
                             layout="constrained")
    for ax, claim in zip(axes[0], claims, strict=True):
        mine = pairs.get(_key(claim), [])
        units = sorted({str(p["unit"]) for p in mine}, key=_unit_order)
        colours = palette(units)
        for unit in units:
            sel = [p for p in mine if str(p["unit"]) == unit]
            ax.scatter([p["base"] for p in sel], [p["other"] for p in sel], s=16, alpha=0.75,
                       color=colours[unit], label=unit)
        values = [v for p in mine for v in (p["base"], p["other"])] or [0.0, 1.0]
        low, high = min(values), max(values)
        pad = 0.05 * (high - low or 1)
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="grey", ls="--", lw=1)
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
        ax.text(0.03, 0.97, f"above the line: {claim['value']} better", transform=ax.transAxes,
                va="top", fontsize=9)
        ax.text(0.97, 0.03, f"below: {claim['baseline']} better", transform=ax.transAxes,
                ha="right", fontsize=9)
        ax.set_xlabel(f"{claim['baseline']}: AUROC")
        ax.set_ylabel(f"{claim['value']}: AUROC (same configuration and seed)")
        ax.set_title(f"{claim['dataset']}: {claim['value']} vs {claim['baseline']}, "
                     f"{len(mine)} pairs")
        ax.grid(alpha=0.3)
        if 0 < len(units) <= 20:
            ax.legend(title=claim["unit"].replace("dataset × ", ""), fontsize=7, ncol=2,
                      loc="lower right", bbox_to_anchor=(1, 0.08))
    return save(fig, path)

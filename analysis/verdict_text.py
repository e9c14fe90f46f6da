"""Claims in words: the report's one sentence per compared value, and the claims table.

AUROC effects are shown in points (0.01 AUROC = 1 point), as are shares of trials; the
log-ratio claims (seed SD, oscillation) as the ratio, other / baseline.
"""

from __future__ import annotations

import math
from typing import Any

POINTS = 100.0
MINUS = "\u2212"  # a typographic minus, as a sign in the report's text


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def shown(row: dict[str, Any], x: float) -> str:
    """A value on a claim's analysis scale, as the reader sees it."""
    if not _finite(x):
        return "–"
    text = f"{math.exp(x):.3g}" if row["log_ratio"] else f"{x * POINTS:+.2f}"
    return text.replace("-", MINUS)


def interval(row: dict[str, Any], low_key: str = "ci_low", high_key: str = "ci_high") -> str:
    return f"[{shown(row, row[low_key])}, {shown(row, row[high_key])}]"


def effect_name(row: dict[str, Any]) -> str:
    if row["log_ratio"]:
        return "SD ratio"
    return "Δ share, points" if row["name"] == "divergence" else "Δ points"


def margin_text(row: dict[str, Any]) -> str:
    if row["log_ratio"]:
        return f"×/÷ {row['margin']:g}"
    return f"±{row['margin'] * POINTS:g} points"


def spread(row: dict[str, Any], key: str) -> str:
    """A between-unit SD or detectable effect: a factor for log ratios, else points."""
    value = row[key]
    if not _finite(value):
        return "–"
    return f"×{math.exp(value):.3g}" if row["log_ratio"] else f"{value * POINTS:.2f}"


def units_word(row: dict[str, Any]) -> str:
    """'classes' for the default unit, else 'units (<fields>)'."""
    fields = [f for f in row["unit"].split(" × ") if f != "dataset"]
    return "classes" if fields == ["normal_class"] else f"units ({row['unit']})"


def sentence(row: dict[str, Any]) -> str:
    """One line answering the question for one compared value (an AUROC claim row)."""
    word = units_word(row)
    text = (f"**{row['value']} vs {row['baseline']} on {row['dataset']}**: "
            f"{shown(row, row['mean'])} AUROC points {interval(row)} over {row['n_units']} "
            f"{word} ({row['n_pairs']} pairs); **{row['verdict']}** within "
            f"{margin_text(row)}")
    if _finite(row["sd"]):
        differs = _finite(row["p_heterogeneity"]) and row["p_heterogeneity"] < 0.05
        text += (f"; {'differs' if differs else 'between-unit spread'} by "
                 f"{'class' if word == 'classes' else 'unit'} (SD {spread(row, 'sd')} points; "
                 f"a new one: {interval(row, 'pi_low', 'pi_high')})")
    if _finite(row.get("trial_se")):
        text += (f". One trial's AUROC has a standard error of "
                 f"{row['trial_se'] * POINTS:.2f} points (DeLong)")
    return text + "."


def claims_table(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The claims as report records: every row names unit, margin, n units, n pairs,
    estimand and test beside its verdict."""
    return [{
        "claim": c["claim"], "verdict": c["verdict"],
        "effect": f"{effect_name(c)} {shown(c, c['mean'])}", "95% CI": interval(c),
        "margin": margin_text(c), "unit": c["unit"], "n units": c["n_units"],
        "n pairs": c["n_pairs"], "estimand": c["estimand"], "test": c["test"],
        "p": c["p"], "p (Holm)": c["p_holm"], "p equiv. (Holm)": c["p_equivalence_holm"],
        "detectable (80%)": spread(c, "detectable"), "between-unit SD": spread(c, "sd"),
        "95% PI (new unit)": interval(c, "pi_low", "pi_high"),
        "one-trial SE": f"{c['trial_se'] * POINTS:.2f}" if _finite(c.get("trial_se")) else "",
        "family": c["family"], "n cells": c["n_cells"], "n seeds": c["n_seeds"],
        "why": c["reason"], "source": c["source"],
    } for c in found]

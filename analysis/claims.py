"""The claims table: each claim of the papers the stored trials can speak to, our verdict
at the 5% level and its evidence (effect, 95% CI, p, n).

Verdicts (p is Holm-adjusted over every claim in the table, so the family stays at 5%):
  supported      the effect is in the claimed direction and p_holm < 0.05;
  not supported  no difference in the claimed direction at 5% (or the opposite holds),
                 with enough pairs that the test could have found one;
  inconclusive   fewer than MIN_PAIRS pairs (Wilcoxon cannot reach 5% below 6) or no data.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from analysis import bestof, convergence
from analysis.deltas import pair_rows, paired_deltas, trial_source
from analysis.stats import (
    ALPHA,
    bootstrap_ci,
    holm,
    mcnemar_p,
    paired_summary,
    pitman_morgan,
    std_ratio_ci,
)
from analysis.views import label_column, pairing_key

MIN_PAIRS = 6


@dataclasses.dataclass(frozen=True)
class ClaimSpec:
    """A claim template: its words, source, the pairs it is judged on and the test."""

    text: str  # formatted with other, baseline, dataset
    source: str
    pairs: Callable[..., list[dict[str, Any]]]  # (con, baseline, axis) -> pair rows
    test: str  # "wilcoxon", "pitman_morgan" or "mcnemar"
    lower_is_claimed: bool  # the claim is that other's value is lower than the baseline's


def _final_mse_pairs(con, baseline: str, axis: str) -> list[dict[str, Any]]:
    return pair_rows(con, trial_source(axis, "final_train_mse"), pairing_key(axis),
                     "final_train_mse", baseline, extra=("dataset", "seed"))


def _status_pairs(con, baseline: str, axis: str) -> list[dict[str, Any]]:
    source = (f"SELECT *, {label_column(axis)} AS value, "
              "CAST(status <> 'complete' AS INTEGER) AS not_complete FROM trials")
    return pair_rows(con, source, pairing_key(axis), "not_complete", baseline,
                     extra=("dataset", "seed"))


def _tail(column: str) -> Callable[..., list[dict[str, Any]]]:
    def pairs(con, baseline: str, axis: str) -> list[dict[str, Any]]:
        return convergence.tail_pairs(con, baseline, column, axis, extra=("dataset", "seed"))
    return pairs


CLAIMS: dict[str, ClaimSpec] = {
    "auroc": ClaimSpec(
        "{other} detects anomalies better than {baseline} on {dataset} (AUROC)",
        "LMSE Tab. I, LAMP Tab. 1", lambda c, b, a: paired_deltas(c, b, a), "wilcoxon", False),
    "variance": ClaimSpec(
        "{other} converges with lower variance across hyperparameters and seeds than "
        "{baseline} on {dataset} (final train_mse)",
        "LMSE Fig. 3, Sec. V", _final_mse_pairs, "pitman_morgan", True),
    "oscillation": ClaimSpec(
        "{other}'s train_mse oscillates less over the last epochs than {baseline}'s on "
        "{dataset}", "LMSE Sec. V (loss convergence)", _tail("mse_osc"), "wilcoxon", True),
    "auroc_epochs": ClaimSpec(
        "{other}'s AUROC is steadier over the last epochs than {baseline}'s on {dataset}",
        "IAEAD Fig. 3", _tail("auroc_osc"), "wilcoxon", True),
    "seed_stability": ClaimSpec(
        "{other}'s AUROC varies less across seeds than {baseline}'s on {dataset}",
        "IAEAD Sec. 4.4.2 (2)",
        lambda c, b, a: convergence.seed_stability_pairs(c, b, a), "wilcoxon", True),
    "divergence": ClaimSpec(
        "{other} diverges or fails less often than {baseline} on {dataset}",
        "LMSE Sec. I (stability)", _status_pairs, "mcnemar", True),
    "best_of": ClaimSpec(
        "{other}'s tuned best AUROC per class beats {baseline}'s on {dataset}",
        "LAMP Tab. 2", lambda c, b, a: bestof.best_pairs(c, b, a), "wilcoxon", False),
}


def evidence(spec: ClaimSpec, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Effect, 95% CI, raw p, n pairs/cells/seeds and the direction seen, for one claim."""
    deltas = np.array([p["delta"] for p in pairs], dtype=float)
    out = {"n_pairs": len(pairs), **counts(pairs)}
    if spec.test == "pitman_morgan":
        base, other = [p["base"] for p in pairs], [p["other"] for p in pairs]
        ratio, p_value = pitman_morgan(base, other)
        low, high = std_ratio_ci(base, other)
        return out | {"effect": ratio, "effect_name": "std ratio", "ci_low": low,
                      "ci_high": high, "p": p_value, "lower": ratio < 1}
    if spec.test == "mcnemar":
        low, high = bootstrap_ci(deltas)
        p_value = mcnemar_p(int((deltas < 0).sum()), int((deltas > 0).sum()))
        return out | {"effect": float(deltas.mean()), "effect_name": "share diff",
                      "ci_low": low, "ci_high": high, "p": p_value, "lower": deltas.sum() < 0}
    summary = paired_summary(deltas)
    return out | {"effect": summary["mean_delta"], "effect_name": "mean Δ",
                  "ci_low": summary["ci_low"], "ci_high": summary["ci_high"],
                  "p": summary["p"], "lower": _rank_direction(deltas) < 0}


def counts(pairs: list[dict[str, Any]]) -> dict[str, int]:
    """n_cells (trials behind the pairs) and n_seeds, for trial- or configuration-level pairs."""
    first = pairs[0] if pairs else {}
    if "base_n_cells" in first:
        cells = sum(int(p["n_cells"]) + int(p["base_n_cells"]) for p in pairs)
    elif "base_n_seeds" in first:
        cells = sum(int(p["n_seeds"]) + int(p["base_n_seeds"]) for p in pairs)
    else:
        cells = 2 * len(pairs)
    if "seed" in first:
        return {"n_cells": cells, "n_seeds": len({p["seed"] for p in pairs})}
    return {"n_cells": cells, "n_seeds": max((int(p["n_seeds"]) for p in pairs), default=0)}


def _rank_direction(deltas: np.ndarray) -> float:
    """Sign of (sum of positive ranks - sum of negative ranks): Wilcoxon's own direction."""
    nonzero = deltas[np.abs(deltas) > 1e-9]
    if len(nonzero) == 0:
        return 0.0
    ranks = np.argsort(np.argsort(np.abs(nonzero))) + 1
    return float(np.sign(ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()))


def claims(con, baseline: str, axis: str = "loss") -> list[dict[str, Any]]:
    """Every claim the trials can speak to, per dataset and compared value, with verdicts."""
    found = []
    for name, spec in CLAIMS.items():
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for pair in spec.pairs(con, baseline, axis):
            groups.setdefault((pair["dataset"], pair["value"]), []).append(pair)
        for (dataset, other), pairs in sorted(groups.items(), key=lambda kv: str(kv[0])):
            if name == "divergence" and not any(p["other"] or p["base"] for p in pairs):
                continue  # nothing diverged or failed on either side: nothing to claim
            text = spec.text.format(other=other, baseline=baseline, dataset=dataset)
            found.append({"claim": text, "source": spec.source, "test": spec.test,
                          "claimed": "lower" if spec.lower_is_claimed else "higher",
                          **evidence(spec, pairs)})
    for row, adjusted in zip(found, holm([r["p"] for r in found]), strict=True):
        row["p_holm"] = adjusted
        row["verdict"], row["reason"] = verdict(row)
    return found


def verdict(row: dict[str, Any]) -> tuple[str, str]:
    """(verdict, reason) for one evidence row: see the module docstring."""
    p = row["p_holm"]
    if row["n_pairs"] < MIN_PAIRS:
        return "inconclusive", f"{row['n_pairs']} pairs; a test needs {MIN_PAIRS} to reach 5%"
    if p is None or math.isnan(p):
        return "inconclusive", "no test possible on these numbers"
    if p >= ALPHA:
        return "not supported", "no difference at the 5% level"
    if row["lower"] == (row["claimed"] == "lower"):
        return "supported", f"{row['claimed']} at the 5% level"
    return "not supported", "the opposite holds at the 5% level"

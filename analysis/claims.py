"""The claims table: each claim of the papers the stored trials can speak to, judged on the
unit of inference (the normal class by default) against a smallest effect of interest.

One estimand per claim: the mean over units of each unit's mean paired effect (a
difference, or the log of a ratio of spreads), with the test that matches it: a one-sample
t test and t interval over the units, and two one-sided t tests (TOST) within ±margin.
Verdicts, each naming its margin (study setting ``analysis.margins``; defaults in
study/analysis_options.py):
  better        the 95% CI excludes 0 on the side the claim calls better;
  worse         the 95% CI excludes 0 on the other side;
  equivalent    the effect lies within ±margin (TOST; the 90% CI inside ±margin);
  inconclusive  neither (no evidence either way), or fewer than 2 units.
Equivalence is read first: a tiny effect that is precisely measured is "equivalent".
Families, fixed by the design (one claim per compared value and dataset, whatever the data
show; a claim without data still counts, as p = 1), each Holm-adjusted on its own within
its scope (analysis.scope): primary = the paired AUROC claims; secondary = the stability
claims.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from analysis import claim_inputs as ci
from analysis.inference import Estimate, estimate, heterogeneity, holm, verdict
from analysis.scope import scopes
from analysis.yardstick import trial_se
from study.analysis_options import AnalysisOptions

FAMILIES = ("primary", "secondary")  # Holm-adjusted apart, per scope
TEST = "t over units, two-sided; TOST within ±margin; Holm within the {family} family"
NOT_CONVERGED_SHARE = 0.5  # above this share of unconverged trials, oscillation is no claim


@dataclasses.dataclass(frozen=True)
class ClaimSpec:
    """A claim template: its words, source, family, margin, estimand and inputs."""

    text: str  # formatted with other, baseline, dataset, last
    source: str
    family: str
    margin: str  # a key of analysis.margins
    estimand: str
    higher_is_better: bool  # for the claim's measure (False: lower spread is better)
    log_ratio: bool  # the estimand is the log of a ratio (shown as the ratio)
    pairs: Callable[[Any, ci.Design, Sequence[str]], list[dict[str, Any]]]
    per_unit: Callable[[list[dict[str, Any]]], dict[Any, float]] = ci.pair_units
    empty: str = "no pairs: no trial of this value has a partner at the baseline"


SEEDLESS = ("no configuration has 2+ complete seeds on both sides: a seed-to-seed spread "
            "needs 2 seeds (5 recommended)")


CLAIMS: dict[str, ClaimSpec] = {
    "auroc": ClaimSpec(
        "{other} detects anomalies better than {baseline} on {dataset} (AUROC)",
        "LMSE Tab. I, LAMP Tab. 1", "primary", "auroc",
        "mean over units of the unit's mean paired Δ AUROC (other − baseline)", True, False,
        lambda con, d, s: ci.metric_pairs(con, d, s, "auroc")),
    "seed_sd_auroc": ClaimSpec(
        "{other}'s AUROC varies less from seed to seed than {baseline}'s on {dataset}",
        "IAEAD Sec. 4.4.2 (2)", "secondary", "seed_sd",
        "mean over units of ln(seed SD of AUROC, other / baseline); seed variance pooled "
        "over the unit's configurations", False, True,
        lambda con, d, s: ci.seed_config_pairs(con, d, s, "auroc"), ci.seed_sd_units, SEEDLESS),
    "seed_sd_mse": ClaimSpec(
        "{other}'s training ends at a steadier train_mse across seeds than {baseline}'s on "
        "{dataset}", "LMSE Fig. 3, Sec. V (spread read as seed-to-seed)", "secondary",
        "seed_sd", "mean over units of ln(seed SD of ln final train_mse, other / baseline)",
        False, True,
        lambda con, d, s: ci.seed_config_pairs(
            con, d, s, "CASE WHEN final_train_mse > 0 THEN ln(final_train_mse) END"),
        ci.seed_sd_units, SEEDLESS),
    "auroc_oscillation": ClaimSpec(
        "{other}'s test AUROC is steadier over the last {last} epochs than {baseline}'s on "
        "{dataset}", "IAEAD Fig. 3", "secondary", "oscillation",
        "mean over units of the mean paired ln(SD of test AUROC around its linear trend over "
        "the last epochs, other / baseline)", False, True, ci.oscillation_pairs),
    "divergence": ClaimSpec(
        "{other} diverges or fails less often than {baseline} on {dataset}",
        "LMSE Sec. I (stability)", "secondary", "divergence",
        "mean over units of the paired difference in the share of trials diverged or failed",
        False, False, ci.status_pairs),
}


def claims(con, baseline: str, axis: str = "loss", last: int = ci.LAST_K) -> list[dict]:
    """Every claim per scope, compared value and dataset, with its verdict and evidence."""
    found: list[dict[str, Any]] = []
    every = scopes(con, axis)
    for scope in every:
        design = ci.Design(baseline, axis, scope.options.unit, last,
                           scope.options.trend_tolerance)
        family = ci.compared(con, design, scope.studies)
        noise = trial_se(con, scope.studies) if family else {}
        for name, spec in CLAIMS.items():
            grouped: dict[tuple, list[dict[str, Any]]] = {}
            for pair in spec.pairs(con, design, scope.studies):
                grouped.setdefault((pair["dataset"], pair["value"]), []).append(pair)
            for dataset, other in family:
                words = {"other": other, "baseline": baseline, "dataset": dataset, "last": last}
                text = spec.text.format(**words) + (f" [{scope.name}]" if len(every) > 1 else "")
                row = {"claim": text, "name": name, "scope": scope.name,
                       "dataset": dataset, "value": other, "baseline": baseline,
                       "source": spec.source}
                row |= judge(spec, grouped.get((dataset, other), []), scope.options, design)
                if name == "auroc":
                    row["trial_se"] = noise.get(dataset, {}).get("se", math.nan)
                found.append(row)
    return adjust(found)


def judge(spec: ClaimSpec, pairs: list[dict[str, Any]], options: AnalysisOptions,
          design: ci.Design) -> dict[str, Any]:
    """A claim's estimate and evidence from its pairs (before the family's adjustment)."""
    margin = options.margin(spec.margin)
    units = spec.per_unit(pairs)
    est = estimate(list(units.values()), math.log(margin) if spec.log_ratio else margin)
    het = math.nan
    if pairs and spec.per_unit is ci.pair_units:
        het = heterogeneity(*ci.config_means(pairs))[1]
    row = dataclasses.asdict(est) | {
        "family": spec.family, "margin": margin, "log_ratio": spec.log_ratio,
        "higher_is_better": spec.higher_is_better,
        "unit": " × ".join(options.unit), "estimand": spec.estimand,
        "test": TEST.format(family=spec.family), "n_pairs": len(pairs), **counts(pairs),
        "p_heterogeneity": het, "notes": [], "blocked": "" if pairs else spec.empty,
    }
    seeds = row["n_seeds"]
    if spec.margin == "seed_sd" and pairs and seeds < 5:
        row["notes"].append(f"{seeds} seeds per configuration (< 5): seed SD poorly estimated")
    if spec.margin == "oscillation" and pairs:
        stuck = sum(not p["converged"] for p in pairs) + sum(not p["base_converged"]
                                                             for p in pairs)
        row["notes"].append(f"{stuck} of {2 * len(pairs)} trials not converged (train_mse "
                            f"still moves > {design.trend_tolerance:g} in log over the last "
                            f"{design.last} epochs)")
        if stuck > NOT_CONVERGED_SHARE * 2 * len(pairs):
            row["blocked"] = "training has not converged in most trials: no oscillation claim"
    return row


def counts(pairs: list[dict[str, Any]]) -> dict[str, int]:
    """n_cells (trials behind the pairs) and n_seeds, for trial or configuration pairs."""
    if not pairs:
        return {"n_cells": 0, "n_seeds": 0}
    if "base_n" in pairs[0]:
        return {"n_cells": sum(int(p["n"]) + int(p["base_n"]) for p in pairs),
                "n_seeds": max(int(p["n"]) for p in pairs)}
    return {"n_cells": 2 * len(pairs), "n_seeds": len({p["seed"] for p in pairs})}


def adjust(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Holm within each family of each scope (over p and over the TOST p), then each row's
    verdict; a study loaded beside another scope leaves this scope's p-values alone."""
    for family in {(r.get("scope"), r["family"]) for r in found}:
        members = [r for r in found if (r.get("scope"), r["family"]) == family]
        for key in ("p", "p_equivalence"):
            for row, adjusted in zip(members, holm([r[key] for r in members]), strict=True):
                row[f"{key}_holm"] = adjusted
    for row in found:
        est = estimate_of(row)
        row["verdict"], reason = verdict(est, row["p_holm"], row["p_equivalence_holm"],
                                         row["higher_is_better"])
        if row["blocked"]:
            row["verdict"], reason = "inconclusive", row["blocked"]
        row["reason"] = "; ".join([reason, *row.pop("notes")])
        del row["blocked"]
    return found


def estimate_of(row: dict[str, Any]) -> Estimate:
    """The Estimate stored in a claim row."""
    return Estimate(**{f.name: row[f.name] for f in dataclasses.fields(Estimate)})

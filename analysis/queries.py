"""Named queries: every statistic and paper table of the report, by name, for `adstudy sql`.

``adstudy sql --list`` prints them; ``adstudy sql convergence`` runs one; options
(--baseline, --axis, --metric, --by, --last) parametrise those that take them, and
``--show-sql`` prints the SQL of those that are a single query.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

from analysis import bestof, claims, convergence, deltas, stability, tuned, yardstick
from analysis import tables_iaead_vae as iaead
from analysis import tables_lmse_lamp as lmse
from analysis.claim_inputs import tail_sql
from analysis.convergence import TRIALS_SQL
from analysis.options import DEFAULTS, METRICS, Options, is_named
from analysis.tables import PaperTable
from analysis.views import rows

__all__ = ["DEFAULTS", "METRICS", "QUERIES", "Options", "is_named", "listing", "lookup",
           "run_named"]





@dataclasses.dataclass(frozen=True)
class NamedQuery:
    help: str
    run: Callable[[Any, Options], list[dict[str, Any]]]
    sql: Callable[[Options], str] | None = None  # the query's SQL, where it is one query


def _table(fn: Callable[[Any], PaperTable]) -> Callable[[Any, Options], list[dict[str, Any]]]:
    return lambda con, o: fn(con).records


def _plain(help_text: str, sql: Callable[[Options], str]) -> NamedQuery:
    return NamedQuery(help_text, lambda con, o: rows(con, sql(o)), sql)


QUERIES: dict[str, NamedQuery] = {
    "trials": _plain("trial counts and mean metrics per study, dataset, model, loss, status",
                     lambda o: TRIALS_SQL),
    "convergence": _plain("per (dataset, model, loss, epoch): mean/std/CV of train_loss and "
                          "train_mse across complete cells", lambda o: convergence.CONVERGENCE_SQL),
    "convergence_seeds": _plain("per (dataset, model, loss, epoch): std/CV across the seeds of "
                                "one configuration, averaged",
                                lambda o: convergence.CONVERGENCE_SEEDS_SQL),
    "oscillation": _plain("per (dataset, model, loss): SD of ln(train_mse) around its trend "
                          "over each trial's last --last epochs, the trend, n not converged",
                          lambda o: convergence.OSCILLATION_SQL.format(tail=tail_sql(o.last))),
    "trial_tails": _plain("per complete trial: over its last --last epochs, the trend of "
                          "ln(train_mse) and of test_auroc, the SD of each around its trend, "
                          "and whether it converged", lambda o: tail_sql(o.last)),
    "divergence": NamedQuery("per (dataset, model, loss): trials by status, diverged share "
                             "with a Wilson 95% CI", lambda con, o: convergence.divergence(con)),
    "auroc_curves": _plain("per (dataset, model, loss, epoch): mean/std of test_auroc",
                           lambda o: convergence.AUROC_CURVES_SQL),
    "auroc_stability": _plain("per (dataset, model, loss): SD of test_auroc around its trend "
                              "over the last --last epochs, the trend, drop from the peak "
                              "(IAEAD fig. 3)", lambda o: convergence.AUROC_STABILITY_SQL.format(
                                  tail=tail_sql(o.last))),
    "seed_stability": NamedQuery("per (dataset, model, loss): variance components of AUROC "
                                 "and ln final train_mse: seed, configuration and class SD",
                                 lambda con, o: stability.seed_components(con)),
    "seed_sd_units": NamedQuery(
        "per class: the seed SD of --baseline and of each other --axis value, pooled over "
        "paired configurations", lambda con, o: stability.unit_seed_sd(con, o.baseline, o.axis)),
    "yardstick": NamedQuery("per dataset: DeLong SE of one trial's AUROC (median over up to "
                            f"{yardstick.PER_DATASET} trials)",
                            lambda con, o: yardstick.yardstick_rows(con)),
    "pairs": NamedQuery("every (other, --baseline) pair of trials equal but for --axis, with "
                        "its --metric delta",
                        lambda con, o: deltas.paired_deltas(con, o.baseline, o.axis, o.metric,
                                                            o.by)),
    "deltas": NamedQuery("paired --metric deltas against --baseline grouped by --by: mean "
                         "with a 95% t interval and p over classes (else configurations), "
                         "median, wins/ties/losses of pairs",
                         lambda con, o: deltas.delta_summary(con, o.baseline, o.axis, o.metric,
                                                             o.by)),
    "unpaired": NamedQuery("trials in no (other, --baseline) pair, with the reason",
                           lambda con, o: deltas.unpaired(con, o.baseline, o.axis, o.metric)),
    "best_of": NamedQuery("per group (--by; default dataset, normal_class and the model, "
                          "protocol, contamination, score where they vary) and --axis value: "
                          "the best configuration's seed-mean AUROC (LAMP Tab. 2)",
                          lambda con, o: bestof.best_of(con, o.axis, o.by)),
    "best_vs_paired": NamedQuery("best-of delta beside the paired delta per dataset, "
                                 "counting classes",
                                 lambda con, o: bestof.best_vs_paired(con, o.baseline, o.axis,
                                                                      o.by)),
    "tuned_trials": _plain("tuned studies: every trial with its selection objective (to "
                           "minimise) and its rank in its group", lambda o: tuned.TUNED_TRIALS_SQL),
    "tuned_best": NamedQuery("tuned studies: per group the best trial by its tune_metric, its "
                             "test metrics and the budget spent",
                             lambda con, o: tuned.tuned_best(con, o.axis)),
    "tuned_budget": NamedQuery("tuned studies: trials spent per group (min/max), outcomes, "
                               "epochs and seconds, per --axis value",
                               lambda con, o: tuned.budget_table(con, o.axis)),
    "tuned_deltas": NamedQuery("tuned bests paired across --axis: --metric of other - "
                               "--baseline, t interval and p over classes, wins/ties/losses",
                               lambda con, o: tuned.tuned_summary(con, o.baseline, o.axis,
                                                                  o.metric, o.by)),
    "tuned_vs_grid": NamedQuery("per dataset: the tuned-best delta beside the grid's paired "
                                "delta", lambda con, o: tuned.side_by_side(con, o.baseline,
                                                                           o.axis, o.metric)),
    "claims": NamedQuery("each claim with its verdict (better / worse / equivalent / "
                         "inconclusive within ±margin) and evidence over units",
                         lambda con, o: claims.claims(con, o.baseline, o.axis, o.last)),
    "lmse_table": NamedQuery("LMSE Tables I/II: AUROC mean ± std per normal class and loss",
                             _table(lmse.lmse_table)),
    "lamp_table1": NamedQuery("LAMP Table 1: AUROC by batch size", _table(lmse.lamp_table1)),
    "lamp_table2": NamedQuery("LAMP Table 2: best AUROC per class, optimizer x base, plain → "
                              "LAMP", _table(lmse.lamp_table2)),
    "iaead_table2": NamedQuery("IAEAD Table 2: AUROC/AUPR-in/AUPR-out (%) by dataset and ρ",
                               _table(iaead.iaead_table2)),
    "iaead_table3": NamedQuery("IAEAD Tables 3/4: AUROC (%) per class and ρ",
                               _table(iaead.iaead_table3)),
    "aevae_outcomes": NamedQuery("AE-vs-VAE: share of trials ending at the optimum and at each "
                                 "suboptimal loss level", _table(iaead.aevae_outcomes)),
}

PAPER_TABLES: dict[str, Callable[[Any], PaperTable]] = {
    "lmse_table": lmse.lmse_table, "lamp_table1": lmse.lamp_table1,
    "lamp_table2": lmse.lamp_table2, "iaead_table2": iaead.iaead_table2,
    "iaead_table3": iaead.iaead_table3, "aevae_outcomes": iaead.aevae_outcomes,
}


def lookup(name: str) -> NamedQuery:
    """The named query, or a ValueError naming the choices (and the closest one)."""
    if name in QUERIES:
        return QUERIES[name]
    close = difflib.get_close_matches(name, QUERIES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown named query {name!r}{hint}; choose from {sorted(QUERIES)}")


# Named queries that compare against --baseline: a baseline absent from the trials is an
# error naming the values present, not an empty answer.
USES_BASELINE = ("seed_sd_units", "pairs", "deltas", "unpaired", "best_vs_paired", "claims",
                 "tuned_deltas", "tuned_vs_grid")


def run_named(con, name: str, options: Options = DEFAULTS) -> list[dict[str, Any]]:
    """Runs a named query over a connection's views.

    Raises:
        ValueError: for an unknown name, or a baseline that no trial has.
    """
    query = lookup(name)
    if name in USES_BASELINE:
        deltas.check_baseline(con, options.baseline, options.axis)
    return query.run(con, options)


def listing() -> list[dict[str, str]]:
    """Name and description of every named query (for --list)."""
    return [{"name": n, "description": q.help} for n, q in QUERIES.items()]

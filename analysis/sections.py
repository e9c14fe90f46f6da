"""The report's sections: each a function (con, ctx) -> list of document blocks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from analysis import bestof, claims, convergence, deltas, figures
from analysis.document import Block, Figure, Heading, Table, Text
from analysis.queries import TRIALS_SQL
from analysis.views import rows


@dataclasses.dataclass(frozen=True)
class Context:
    """What every section needs: where figures go, the baseline, and the query options."""

    folder: Path
    baseline: str
    axis: str = "loss"
    last: int = convergence.LAST_K
    has_baseline: bool = True
    cli: str = ""  # "--results R --study S": appended to reproducing commands


def reproduce(ctx: Context, name: str, options: str = "") -> Text:
    """The named query that reproduces a section's numbers."""
    return Text(f"Reproduce: `{' '.join(f'adstudy sql {name} {ctx.cli} {options}'.split())}`")


def claims_section(con, ctx: Context) -> list[Block]:
    blocks: list[Block] = [Heading("Claims")]
    if not ctx.has_baseline:
        return blocks + [_no_baseline(con, ctx)]
    found = claims.claims(con, ctx.baseline, ctx.axis)
    records = [
        {"claim": c["claim"], "verdict": c["verdict"],
         "effect": f"{c['effect_name']} {c['effect']:{'+' if 'Δ' in c['effect_name'] else ''}.4g}",
         "95% CI": f"[{c['ci_low']:.4g}, {c['ci_high']:.4g}]",
         "p": c["p"], "p (Holm)": c["p_holm"], "n pairs": c["n_pairs"],
         "n cells": c["n_cells"], "n seeds": c["n_seeds"], "test": c["test"],
         "why": c["reason"], "source": c["source"]}
        for c in found
    ]
    tally = {v: sum(c["verdict"] == v for c in found)
             for v in ("supported", "not supported", "inconclusive")}
    return blocks + [
        Text(f"**{len(found)} claims**: " + ", ".join(f"{n} {v}" for v, n in tally.items())
             + "."),
        Text("Each claim of the papers these trials can speak to, judged on pairs of trials "
             f"equal on every field but the {ctx.axis}. **supported**: the claimed direction "
             "holds with Holm-adjusted p < 0.05 over all claims below; **not supported**: no "
             "difference at 5% or the opposite holds; **inconclusive**: fewer than "
             f"{claims.MIN_PAIRS} pairs. Effects are other − {ctx.baseline} (a std ratio for "
             "variance: other / baseline); CIs are 95% bootstrap (pairs resampled, seed 0)."),
        Table(records),
        reproduce(ctx, "claims", f"--baseline {ctx.baseline}"),
    ]


def trials_section(con, ctx: Context) -> list[Block]:
    return [
        Heading("Trials"),
        Table(rows(con, TRIALS_SQL)),
        reproduce(ctx, "trials"),
        Text("Divergence: the share of trials that diverged (95% Wilson interval)."),
        Table(convergence.divergence(con)),
        reproduce(ctx, "divergence"),
    ]


def convergence_section(con, ctx: Context) -> list[Block]:
    across_cells = convergence.convergence(con)
    blocks: list[Block] = [
        Heading("Convergence variance"),
        Text("Complete trials only (diverged ones are counted above). `loss_*` is each loss's "
             "own objective; `mse_*` is train_mse, the common scale on which losses can be "
             "compared. Across cells pools hyperparameters and seeds; across seeds is the std "
             "among the seeds of one configuration, averaged over configurations."),
    ]
    if across_cells:
        png = figures.loss_bands(across_cells, ctx.folder / "loss_bands.png")
        blocks.append(Figure(png, "Loss per epoch: mean ± std across cells, per loss"))
    blocks += [
        Table(_some_epochs(across_cells), caption="Across cells (selected epochs)"),
        reproduce(ctx, "convergence"),
        Table(_some_epochs(convergence.convergence_seeds(con)),
              caption="Across seeds of one configuration (selected epochs)"),
        reproduce(ctx, "convergence_seeds"),
        Table(convergence.oscillation(con, ctx.last),
              caption=f"Oscillation: std of each trial's last {ctx.last} epochs, averaged"),
        reproduce(ctx, "oscillation", f"--last {ctx.last}"),
    ]
    return blocks


def _some_epochs(records: list[dict[str, Any]], keep: int = 6) -> list[dict[str, Any]]:
    """Records at up to ``keep`` evenly spaced epochs (always the first and the last)."""
    epochs = sorted({r["epoch"] for r in records})
    if len(epochs) > keep:
        picks = {epochs[round(i * (len(epochs) - 1) / (keep - 1))] for i in range(keep)}
        records = [r for r in records if r["epoch"] in picks]
    return records


def deltas_section(con, ctx: Context) -> list[Block]:
    blocks: list[Block] = [Heading(f"Metric deltas against {ctx.baseline}")]
    if not ctx.has_baseline:
        return blocks + [_no_baseline(con, ctx)]
    blocks.append(Text(f"Pairs of complete trials equal on every field but the {ctx.axis}; "
                       f"delta = other − {ctx.baseline}. CI: 95% bootstrap of the mean; p: "
                       "two-sided Wilcoxon signed-rank; wins/ties/losses count pairs."))
    for metric in ("auroc", "aupr_in", "aupr_out"):
        summary = deltas.delta_summary(con, ctx.baseline, ctx.axis, metric)
        blocks.append(Table(summary, caption=f"{metric}: all pairs"))
    by_class = deltas.delta_summary(con, ctx.baseline, ctx.axis, "auroc", ["normal_class"])
    pairs = deltas.paired_deltas(con, ctx.baseline, ctx.axis, "auroc")
    if pairs:
        png = figures.delta_distributions(pairs, ctx.baseline, "auroc", "normal_class",
                                          ctx.folder / "auroc_deltas.png")
        blocks.append(Figure(png, f"AUROC delta against {ctx.baseline} per normal class"))
    blocks += [
        Table(by_class, caption="auroc: per normal class"),
        reproduce(ctx, "deltas", f"--baseline {ctx.baseline} --metric auroc --by normal_class"),
        Heading("Trials without a pair", 3),
        Table(deltas.unpaired(con, ctx.baseline, ctx.axis)),
        reproduce(ctx, "unpaired", f"--baseline {ctx.baseline}"),
    ]
    return blocks


def seed_section(con, ctx: Context) -> list[Block]:
    blocks: list[Block] = [
        Heading("Seed stability"),
        Text("Per configuration (a cell without its seed, with at least two complete seeds): "
             "the std of AUROC across seeds."),
        Table(convergence.seed_stability(con)),
        reproduce(ctx, "seed_stability"),
    ]
    if ctx.has_baseline:
        pairs = convergence.seed_stability_pairs(con, ctx.baseline, ctx.axis)
        if pairs:
            png = figures.seed_scatter(pairs, ctx.baseline, ctx.folder / "seed_stability.png")
            blocks.append(Figure(png, "AUROC std across seeds per configuration"))
        blocks += [
            Table(deltas.summarise(pairs),
                  caption=f"Paired: other − {ctx.baseline} seed std (negative = steadier; "
                          "wins count configurations where the other loss varies more)"),
            reproduce(ctx, "seed_stability_deltas", f"--baseline {ctx.baseline}"),
        ]
    return blocks


def auroc_epochs_section(con, ctx: Context) -> list[Block]:
    blocks: list[Block] = [Heading("AUROC per epoch")]
    curves = convergence.auroc_curves(con)
    if curves:
        png = figures.auroc_curves(curves, convergence.auroc_traces(con),
                                   ctx.folder / "auroc_per_epoch.png")
        blocks.append(Figure(png, "Test AUROC per epoch (IAEAD fig. 3)"))
    return blocks + [
        Text(f"Std of test AUROC over each trial's last {ctx.last} epochs, and its drop from "
             "the best epoch to the last (how much waiting for convergence costs)."),
        Table(convergence.auroc_stability(con, ctx.last)),
        reproduce(ctx, "auroc_stability", f"--last {ctx.last}"),
    ]


def bestof_section(con, ctx: Context) -> list[Block]:
    blocks: list[Block] = [
        Heading("Best-of tuning"),
        Text("Per (dataset, normal class, loss): the best configuration by seed-mean AUROC, "
             "tuned over every other field, as LAMP's Table 2 reports. Best-of compares each "
             "loss at its own best hyperparameters, so it mixes the loss's effect with the "
             "maximum over the grid; the paired comparison holds hyperparameters equal."),
        Table(bestof.best_of(con, ctx.axis)),
        reproduce(ctx, "best_of"),
    ]
    if ctx.has_baseline:
        blocks += [
            Table(bestof.best_vs_paired(con, ctx.baseline, ctx.axis),
                  caption="Best-of delta beside the paired delta, per dataset (groups = "
                          "classes; disagreements: classes where the two differ on the winner)"),
            reproduce(ctx, "best_vs_paired", f"--baseline {ctx.baseline}"),
        ]
    return blocks


def _no_baseline(con, ctx: Context) -> Text:
    values = deltas.axis_values(con, ctx.axis)
    return Text(f"No trials at baseline {ctx.axis} `{ctx.baseline}`; values here: {values}. "
                "Pass --baseline to compare against one of them.")

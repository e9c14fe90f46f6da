"""The report's sections after the claims: stability, convergence (a description of the
grid), metric deltas, AUROC per epoch and best-of tuning; each (con, ctx) -> blocks."""

from __future__ import annotations

from typing import Any

from analysis import bestof, convergence, deltas, figures, stability
from analysis.document import Block, Figure, Heading, Table, Text
from analysis.sections import Context, no_baseline, reproduce


def stability_section(con, ctx: Context) -> list[Block]:
    components = stability.seed_components(con, ctx.unit)
    few = sorted({r["n seeds"] for r in components if r["n seeds"] < stability.RECOMMENDED_SEEDS})
    blocks: list[Block] = [
        Heading("Stability"),
        Text("Stability as the papers mean it: how much a result moves when only the seed "
             "changes. Per loss, the variance of a trial's AUROC and of its ln final "
             "train_mse splits into a seed SD (within one configuration: stability), a "
             "configuration SD (between configurations of one unit: the grid) and a unit SD "
             "(between units), by ANOVA moments."),
    ]
    if few:
        blocks.append(Text(f"**Warning**: {', '.join(map(str, few))} seed(s) per configuration "
                           f"here; a seed SD needs about {stability.RECOMMENDED_SEEDS} seeds to "
                           "be estimated usefully, so the seed-stability claims are weak."))
    blocks += [Table(components), reproduce(ctx, "seed_stability")]
    if ctx.has_baseline:
        units = stability.unit_seed_sd(con, ctx.baseline, ctx.axis, ctx.unit)
        if units:
            png = figures.seed_scatter(units, ctx.baseline, ctx.folder / "seed_stability.png")
            blocks += [Figure(png, f"Seed SD per unit: {ctx.baseline} (x) against the other "
                              "value (y); below the diagonal the other value is steadier"),
                       reproduce(ctx, "seed_sd_units", f"--baseline {ctx.baseline}")]
    return blocks + [
        Text(f"Oscillation: the SD of ln(train_mse) around its own linear trend over each "
             f"trial's last {ctx.last} epochs, the trend itself (the log change across those "
             "epochs) and how many trials have not converged (|trend| above the study's "
             "`analysis.trend_tolerance`, default 0.05). Removing the trend keeps a curve that "
             "is still falling from reading as an oscillating one. A description: no paper "
             "claims it."),
        Table(convergence.oscillation(con, ctx.last)),
        reproduce(ctx, "oscillation", f"--last {ctx.last}"),
    ]


def convergence_section(con, ctx: Context) -> list[Block]:
    across_cells = convergence.convergence(con)
    blocks: list[Block] = [
        Heading("Convergence (a description of the grid)"),
        Text("Complete trials only (diverged ones are counted above). `loss_*` is each loss's "
             "own objective; `mse_*` is train_mse, the common scale on which losses can be "
             "compared. The spread across cells pools hyperparameters, classes and seeds: it "
             "describes the grid, and no claim is drawn from it (stability claims use the "
             "seed-to-seed spread). Across seeds is the SD among the seeds of one "
             "configuration, averaged over configurations."),
    ]
    if across_cells:
        png = figures.loss_bands(across_cells, ctx.folder / "loss_bands.png")
        blocks.append(Figure(png, "Loss per epoch: mean ± SD across cells, per loss (each "
                             "loss one colour and line style; a band's edges in its style; "
                             "loss axes on a log scale)"))
    return blocks + [
        Table(_some_epochs(across_cells), caption="Across cells (selected epochs)"),
        reproduce(ctx, "convergence"),
        Table(_some_epochs(convergence.convergence_seeds(con)),
              caption="Across seeds of one configuration (selected epochs)"),
        reproduce(ctx, "convergence_seeds"),
    ]


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
        return blocks + [no_baseline(con, ctx)]
    blocks.append(Text(f"Pairs of complete trials equal on every field but the {ctx.axis}; "
                       f"delta = other − {ctx.baseline}. Mean delta with a 95% t interval and "
                       "t-test p over the clusters named in `over` (classes where a row holds "
                       "two or more, else the configurations of its one class); the median "
                       "and wins/ties/losses count pairs."))
    for metric in ("auroc", "aupr_in", "aupr_out"):
        summary = deltas.delta_summary(con, ctx.baseline, ctx.axis, metric)
        blocks.append(Table(summary, caption=f"{metric}: all pairs"))
    by_class = deltas.delta_summary(con, ctx.baseline, ctx.axis, "auroc", ["normal_class"])
    pairs = deltas.paired_deltas(con, ctx.baseline, ctx.axis, "auroc")
    if pairs:
        png = figures.delta_distributions(pairs, ctx.baseline, "auroc", "normal_class",
                                          ctx.folder / "auroc_deltas.png")
        blocks.append(Figure(png, f"AUROC delta against {ctx.baseline} per normal class"))
    return blocks + [
        Table(by_class, caption="auroc: per normal class"),
        reproduce(ctx, "deltas", f"--baseline {ctx.baseline} --metric auroc --by normal_class"),
        Heading("Trials without a pair", 3),
        Table(deltas.unpaired(con, ctx.baseline, ctx.axis)),
        reproduce(ctx, "unpaired", f"--baseline {ctx.baseline}"),
    ]


def auroc_epochs_section(con, ctx: Context) -> list[Block]:
    blocks: list[Block] = [Heading("AUROC per epoch")]
    curves = convergence.auroc_curves(con)
    if curves:
        paired = (convergence.auroc_epoch_deltas(con, ctx.baseline, ctx.axis)
                  if ctx.has_baseline else [])
        png = figures.auroc_curves(curves, convergence.auroc_traces(con),
                                   ctx.folder / "auroc_per_epoch.png", paired, ctx.baseline)
        blocks.append(Figure(png, "Test AUROC per epoch (IAEAD fig. 3): per loss its mean ± SD "
                             "across cells (its own line style and marker) and, thin, up to "
                             "12 single trials as they ran. An untrained autoencoder can "
                             "score anomalies lower than normal images, so a single trial's "
                             "first epochs may lie far below chance (0.5, dotted): an AUROC "
                             "near 0.07 is a ranking nearly inverted, not an error"))
    return blocks + [
        Text(f"SD of test AUROC around its linear trend over each trial's last {ctx.last} "
             "epochs, the trend, and the drop from the best epoch to the last (how much "
             "waiting for convergence costs)."),
        Table(convergence.auroc_stability(con, ctx.last)),
        reproduce(ctx, "auroc_stability", f"--last {ctx.last}"),
    ]


def bestof_section(con, ctx: Context) -> list[Block]:
    on_test = bestof.selection(con) == "auroc"
    blocks: list[Block] = [
        Heading("Best-of tuning"),
        Text("Per (dataset, normal class, loss): the best configuration by seed-mean AUROC, "
             "tuned over every other field, as LAMP's Table 2 reports. Best-of compares each "
             "loss at its own best hyperparameters, so it mixes the loss's effect with the "
             "maximum over the grid; the paired comparison holds hyperparameters equal. A "
             "description, not a claim."
             + (" **Selected on the test AUROC it reports (no validation split): "
                "optimistic.**" if on_test else " Selected on the validation AUROC.")),
        Table(bestof.best_of(con, ctx.axis)),
        reproduce(ctx, "best_of"),
    ]
    if ctx.has_baseline:
        blocks += [
            Table(bestof.best_vs_paired(con, ctx.baseline, ctx.axis),
                  caption="Best-of delta beside the paired delta, per dataset; the counts "
                          "count groups (classes): groups where each is higher, and where "
                          "the two disagree on the winner"),
            reproduce(ctx, "best_vs_paired", f"--baseline {ctx.baseline}"),
        ]
    return blocks

"""The report's "Tuned comparison" section (search: optuna): the budget, each group's
tuned best and the paired tuned bests, beside the grid where a study holds both."""

from __future__ import annotations

from analysis import tuned
from analysis.document import Block, Heading, Table, Text
from analysis.sections import Context, reproduce

INTRO = (
    "Each group (a combination of the compared and varied axes: {axis}, dataset, normal "
    "class, seed, ...) is its own Optuna search over the tuned axes with the same budget of "
    "trials. A group's best is its complete trial with the best {metrics} (a validation "
    "split held out of the training images unless the metric is a test one, which a spec "
    "must allow with `optuna.labels: test`); its test metrics are reported, never used to "
    "choose. Pruned: stopped early by the group's ASHA; n_trials counts complete, diverged "
    "and pruned trials (a failed trial is run again on resubmission). Each group's search "
    "is an Optuna study in `<results>/<study>/optuna/journal.log` named `<study>/<group "
    "label>`: `optuna.load_study` and `optuna-dashboard` read it (README: Use with Optuna)."
)


def tuned_section(con, ctx: Context) -> list[Block]:
    """The report's "Tuned comparison" section."""
    best = tuned.tuned_best(con, ctx.axis)
    metrics = sorted({r["selected_on"] for r in best}) or ["(no complete trial)"]
    blocks = [
        Heading("Tuned comparison"),
        Text(INTRO.format(axis=ctx.axis, metrics=", ".join(metrics))),
        Table(tuned.budget_table(con, ctx.axis),
              caption="Budget spent per value: equal budgets show as min = max per group"),
        reproduce(ctx, "tuned_budget"),
        Table(best, caption="Tuned best per group"),
        reproduce(ctx, "tuned_best"),
    ]
    if not ctx.has_baseline:
        return blocks + [Text(f"No tuned best at baseline {ctx.axis} `{ctx.baseline}`; pass "
                              "--baseline to compare against another value.")]
    blocks += [
        Table(tuned.per_class_table(best, ctx.baseline, ctx.axis),
              caption=f"Test AUROC of the tuned bests per class (LAMP Table 2 layout; mean "
                      f"over seeds) and the difference from {ctx.baseline}"),
        Table(tuned.tuned_summary(con, ctx.baseline, ctx.axis, "auroc", ["dataset"]),
              caption=f"Paired tuned bests: AUROC of other − {ctx.baseline} over groups "
                      "equal but for the compared and tuned axes (95% t interval "
                      "and p over classes, wins/ties/losses of pairs)"),
        reproduce(ctx, "tuned_deltas", f"--baseline {ctx.baseline} --by dataset"),
    ]
    if tuned.has_grid(con):
        blocks += [
            Table(tuned.side_by_side(con, ctx.baseline, ctx.axis),
                  caption="Tuned bests (each loss at its own best, equal budget) beside the "
                          "grid (losses at equal hyperparameters): mean AUROC delta"),
            reproduce(ctx, "tuned_vs_grid", f"--baseline {ctx.baseline}"),
        ]
    return blocks

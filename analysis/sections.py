"""The report's first sections: the answer, the claims, the trials and the provenance.
Each is a function (con, ctx) -> list of document blocks (analysis.sections_detail holds
the sections that follow them)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from analysis import claim_inputs, convergence, deltas, figures_claims, verdict_text
from analysis.document import Block, Figure, Heading, Table, Text
from analysis.scope import curve_subsamples, scopes
from analysis.views import rows
from analysis.yardstick import yardstick_rows
from study.analysis_options import DEFAULT_MARGINS, DEFAULT_UNIT


@dataclasses.dataclass(frozen=True)
class Context:
    """What every section needs: where figures go, the baseline, the query options, and
    the claims (computed once per report)."""

    folder: Path
    baseline: str
    axis: str = "loss"
    last: int = claim_inputs.LAST_K
    has_baseline: bool = True
    cli: str = ""  # "--results R --study S": appended to reproducing commands
    unit: tuple[str, ...] = DEFAULT_UNIT
    claims: tuple[dict[str, Any], ...] = ()


def reproduce(ctx: Context, name: str, options: str = "") -> Text:
    """The named query that reproduces a section's numbers."""
    return Text(f"Reproduce: `{' '.join(f'adstudy sql {name} {ctx.cli} {options}'.split())}`")


VOCABULARY = (
    "**better** / **worse**: the 95% CI of the effect excludes 0 on that side; "
    "**equivalent**: the effect lies within ±margin, the smallest effect of interest (two "
    "one-sided t tests: the 90% CI inside ±margin); **inconclusive**: neither — the data "
    "cannot tell. Effects are means over units (normal classes unless the study names "
    "another `analysis.unit`) of each unit's mean paired effect; cells of one class share "
    "one test split, so the classes, not the pairs, are the replicates."
)


def auroc_claims(ctx: Context) -> list[dict[str, Any]]:
    return [c for c in ctx.claims if c["name"] == "auroc"]


def claim_pairs(con, ctx: Context) -> dict[tuple, list[dict[str, Any]]]:
    """The AUROC pairs behind each AUROC claim, by (scope, dataset, value)."""
    out: dict[tuple, list[dict[str, Any]]] = {}
    for scope in scopes(con, ctx.axis):
        design = claim_inputs.Design(ctx.baseline, ctx.axis, scope.options.unit, ctx.last)
        for p in claim_inputs.metric_pairs(con, design, scope.studies, "auroc"):
            out.setdefault((scope.name, p["dataset"], p["value"]), []).append(p)
    return out


def answer_section(con, ctx: Context) -> list[Block]:
    """The first screen: one sentence per compared value, the forest plot, the scatter."""
    blocks: list[Block] = [Heading("Answer")]
    if not ctx.has_baseline:
        return blocks + [no_baseline(con, ctx)]
    found = auroc_claims(ctx)
    if not found:
        return blocks + [Text(f"No {ctx.axis} value here to compare with `{ctx.baseline}`.")]
    blocks += [Text(verdict_text.sentence(c)) for c in found]
    pairs = claim_pairs(con, ctx)
    blocks += [
        Figure(figures_claims.forest(found, pairs, ctx.folder / "forest.png"),
               f"Δ AUROC against {ctx.baseline} per unit (95% t interval over its "
               "configurations) and pooled (95% CI over units, dotted: prediction interval "
               "for a new unit); shaded: ±margin"),
        Figure(figures_claims.paired_scatter(found, pairs, ctx.folder / "paired_auroc.png"),
               f"Each pair of trials equal but for the {ctx.axis}: {ctx.baseline} (x) against "
               "the other value (y)"),
        Text(VOCABULARY),
    ]
    return blocks


def claims_section(con, ctx: Context) -> list[Block]:
    blocks: list[Block] = [Heading("Claims")]
    if not ctx.has_baseline:
        return blocks + [no_baseline(con, ctx)]
    tally = {v: sum(c["verdict"] == v for c in ctx.claims)
             for v in ("better", "worse", "equivalent", "inconclusive")}
    defaults = ", ".join(f"{k} {v:g}" for k, v in DEFAULT_MARGINS.items())
    return blocks + [
        Text(f"**{len(ctx.claims)} claims**: " + ", ".join(f"{n} {v}" for v, n in tally.items())
             + "."),
        Text("Each claim of the papers these trials can speak to, judged on pairs of trials "
             f"equal on every field but the {ctx.axis}, averaged per unit, then over units. "
             "Families, fixed by the design (one claim per compared value and dataset, "
             "whatever the data show), each Holm-adjusted: **primary** = paired AUROC; "
             "**secondary** = stability (seed-to-seed SD of AUROC and of ln final train_mse, "
             "test-AUROC oscillation around its trend, divergence). Margins are the study "
             f"setting `analysis.margins` (defaults: {defaults}; ratios as ×/÷). "
             "*detectable*: the smallest effect these units find with 80% power at 5%. "
             "*one-trial SE*: the DeLong standard error of a single trial's AUROC (points), "
             "the noise of one evaluation on these test images. Best-of comparisons (LAMP "
             "Table 2) are descriptions, not claims: see Best-of tuning."),
        *curve_note(con),
        Table(verdict_text.claims_table(list(ctx.claims))),
        reproduce(ctx, "claims", f"--baseline {ctx.baseline}"),
        Table(yardstick_rows(con), caption="Yardstick: the standard error of one trial's "
              "AUROC (DeLong, from the stored scores of up to 40 trials per study and dataset)"),
        reproduce(ctx, "yardstick"),
    ]


def curve_note(con) -> list[Text]:
    """Which test images the per-epoch test figures (the AUROC curves and their
    oscillation) are on, for studies that score a fixed subsample each epoch."""
    found = curve_subsamples(con)
    if not found:
        return []
    named = ", ".join(f"{study} ({n} images)" for study, n in found.items())
    return [Text(f"Test-AUROC curves of {named}: every epoch's test figures are on a fixed "
                 "random subsample of the test images (`run.curve_test_images`; the same "
                 "images for every epoch and cell), so the oscillation claims read those "
                 "images; final AUROCs and AUPRs use every test image.")]


def trials_section(con, ctx: Context) -> list[Block]:
    return [
        Heading("Trials"),
        Table(rows(con, convergence.TRIALS_SQL)),
        reproduce(ctx, "trials"),
        Text("Divergence: the share of trials that diverged (95% Wilson interval)."),
        Table(convergence.divergence(con)),
        reproduce(ctx, "divergence"),
    ]


PROVENANCE_SQL = """
SELECT study, count(*) AS n_cells, count(DISTINCT seed) AS n_seeds,
       string_agg(DISTINCT adstudy_version, ' ') AS adstudy,
       string_agg(DISTINCT nullif(git_sha, ''), ' ') AS git_sha,
       string_agg(DISTINCT torch_version, ' ') AS torch,
       string_agg(DISTINCT ray_version, ' ') AS ray,
       min(started_at) AS first_started, max(finished_at) AS last_finished
FROM trials GROUP BY study ORDER BY study
"""


def provenance_section(con, ctx: Context) -> list[Block]:
    """Code versions, git sha and the trials' time span, per study (the report's end)."""
    return [Heading("Provenance"), Table(rows(con, PROVENANCE_SQL))]


def no_baseline(con, ctx: Context) -> Text:
    values = deltas.axis_values(con, ctx.axis)
    return Text(f"No trials at baseline {ctx.axis} `{ctx.baseline}`; values here: {values}. "
                "Pass --baseline to compare against one of them.")

"""The ``analysis:`` section of a study file, the scopes of a report over several studies,
and the settings reaching the claims through study.json."""

import math

import pytest
from analysis_data import grid, plus, write_study

from analysis import claim_inputs as ci
from analysis.claims import claims
from analysis.scope import scopes
from analysis.views import connect
from study.analysis_options import DEFAULTS, parse_analysis
from study.errors import SpecError
from study.grid import expand
from study.identity import differences
from study.spec import parse_spec
from study.store import ResultsStore

SPEC = """
study: s
compare: {loss: [mse, lmse]}
vary: {normal_class: [0, 1, 2], seed: [0, 1]}
fixed: {epochs: 3}
"""


def test_defaults_and_overrides():
    assert parse_analysis(None) == DEFAULTS
    assert DEFAULTS.unit == ("dataset", "normal_class") and DEFAULTS.margin("auroc") == 0.005
    found = parse_analysis({"unit": "seed", "margins": {"auroc": 0.01, "seed_sd": 1.5},
                            "trend_tolerance": 0.1})
    assert found.unit == ("seed",) and found.margin("auroc") == 0.01
    assert found.margin("seed_sd") == 1.5 and found.margin("aupr_in") == 0.005
    assert found.trend_tolerance == 0.1


@pytest.mark.parametrize("block, message", [
    ({"units": "seed"}, "unknown key 'units' in analysis; did you mean 'unit'?"),
    ({"unit": "class"}, "analysis.unit: 'class' is not a cell field; choose from ["),
    ({"unit": []}, "analysis.unit: expected a field name or a list of them, got []"),
    ({"margins": {"aurocc": 0.01}}, "unknown key 'aurocc' in analysis.margins; did you mean "
                                    "'auroc'?"),
    ({"margins": {"auroc": -1}}, "analysis.margins.auroc: expected a number > 0, got -1"),
    ({"margins": {"seed_sd": 0.8}}, "analysis.margins.seed_sd: 0.8 is a ratio margin; give a "
                                    "number > 1"),
    ({"trend_tolerance": "big"}, "analysis.trend_tolerance: expected a number > 0, got 'big'"),
    ("seed", "analysis must be a mapping with keys ['unit', 'margins', 'trend_tolerance']"),
])
def test_bad_settings_are_named_before_any_work(block, message):
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("?", r"\?")):
        parse_analysis(block)


def test_the_analysis_section_changes_no_cell_and_not_the_study():
    plain = parse_spec(SPEC)
    judged = parse_spec(SPEC + "analysis: {unit: seed, margins: {auroc: 0.02}}\n")
    assert judged.analysis.unit == ("seed",) and plain.analysis == DEFAULTS
    assert [c.cell_id for c in expand(plain)] == [c.cell_id for c in expand(judged)]
    assert differences(plain, judged) == [] and differences(judged, plain) == []
    with pytest.raises(SpecError, match="analysis.margins.auroc: expected a number > 0"):
        parse_spec(SPEC + "analysis: {margins: {auroc: 0}}\n")


def store_spec(root, study, analysis=""):
    text = SPEC.replace("study: s", f"study: {study}") + analysis
    ResultsStore(str(root), study).write_study_json({"study": study, "spec_yaml": text})


def auroc_rows(found):
    return [c for c in found if c["name"] == "auroc"]


def test_the_study_settings_reach_the_claims(tmp_path):
    write_study(tmp_path, "s", grid("s", classes=3, seeds=4), plus(0.01))
    store_spec(tmp_path, "s", "analysis: {unit: seed, margins: {auroc: 0.02}}\n")
    (row,) = auroc_rows(claims(connect(str(tmp_path)), "mse"))
    assert row["unit"] == "seed" and row["n_units"] == 4 and row["margin"] == 0.02
    assert row["verdict"] == "equivalent"  # +0.01 everywhere, inside ±0.02


def test_the_compared_axis_cannot_be_the_unit(tmp_path):
    write_study(tmp_path, "s", grid("s", classes=2), plus(0.01))
    store_spec(tmp_path, "s", "analysis: {unit: loss}\n")
    with pytest.raises(ValueError, match="analysis.unit: 'loss' is the compared axis 'loss'"):
        claims(connect(str(tmp_path)), "mse")


def test_alike_studies_pool_and_others_keep_their_own_claims(tmp_path):
    write_study(tmp_path, "a", grid("a", classes=4), plus(0.01))
    write_study(tmp_path, "b", grid("b", classes=4), plus(0.02))  # the same frame as a
    write_study(tmp_path, "c", grid("c", classes=4, lr=0.01), plus(0.03))  # another lr
    found = scopes(connect(str(tmp_path)))
    assert sorted(s.studies for s in found) == [("a", "b"), ("c",)]
    rows = {r["scope"]: r for r in auroc_rows(claims(connect(str(tmp_path)), "mse"))}
    assert set(rows) == {"a+b", "c"}
    assert rows["a+b"]["mean"] == pytest.approx(0.015) and rows["a+b"]["n_pairs"] == 16
    assert rows["a+b"]["n_units"] == 4  # class k of a and of b is one unit
    assert rows["c"]["claim"].endswith("[c]") and rows["c"]["mean"] == pytest.approx(0.03)


def test_loading_another_study_leaves_a_scopes_adjusted_p_alone(tmp_path):
    def noisy(cell):
        wobble = 0.004 * (((5 * cell.normal_class + 3 * cell.seed) % 7) - 3)
        return plus(0.003)(cell) + (wobble if cell.loss == "lmse" else 0.0)

    write_study(tmp_path, "a", grid("a", classes=6), noisy)
    write_study(tmp_path, "c", grid("c", classes=6, lr=0.01), plus(0.03))
    alone = claims(connect(str(tmp_path), ["a"]), "mse")
    both = [r for r in claims(connect(str(tmp_path)), "mse") if r["scope"] == "a"]
    for one, two in zip(alone, both, strict=True):
        assert math.isclose(one["p_holm"], two["p_holm"]) and one["verdict"] == two["verdict"]


def test_a_claim_without_pairs_stays_in_its_family(tmp_path):
    write_study(tmp_path, "s", grid("s", classes=3), plus(0.01),
                status=lambda c: "diverged" if c.loss == "lmse" else "complete")
    found = claims(connect(str(tmp_path)), "mse")
    (row,) = auroc_rows(found)
    assert row["n_pairs"] == 0 and row["verdict"] == "inconclusive"
    assert row["reason"].startswith("no pairs")
    (div,) = [r for r in found if r["name"] == "divergence"]
    assert div["verdict"] == "worse" and div["mean"] == 1.0  # every lmse trial diverged
    assert ci.compared(connect(str(tmp_path)), ci.Design("mse"), ["s"]) == [("digits", "lmse")]

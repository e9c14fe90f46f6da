"""Curve figures on a fixed test subsample (run.curve_test_images, issue 21): each epoch's
test figures are those of the subsample's images, the final record is unchanged bit for
bit, and a stored study refuses a different subsample (its curves would mix)."""

import numpy as np
import pytest

from study.cell import Cell
from study.errors import SpecError
from study.identity import differences
from study.spec import parse_spec
from trainables.curves import curve_subset
from trainables.metrics import auroc
from trainables.run import run_cells

TEST_KEYS = ("test_auroc", "test_mse_normal", "test_mse_anomalous")


def test_the_subsample_is_fixed_sorted_and_distinct():
    picked = curve_subset(599, 200)
    assert len(picked) == 200 and len(set(picked)) == 200
    assert np.all(np.diff(picked) > 0) and picked[-1] < 599
    np.testing.assert_array_equal(picked, curve_subset(599, 200))  # every cell, every epoch
    assert curve_subset(599, 0) is None and curve_subset(599, 599) is None
    assert curve_subset(100, 500) is None  # not fewer than the test set: every image


def cells(n: int):
    base = dict(study="s", dataset="digits", normal_class=4, latent_dim=4, epochs=3,
                batch_size=32)
    return [Cell(**base, seed=s, lr=0.003) for s in range(n)]


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 3])  # one cell (train_cell), a stack (train_stack)
def test_curves_are_the_subsample_and_the_final_record_is_unchanged(n, tmp_path):
    full = list(run_cells(cells(n), str(tmp_path), "cpu"))
    sub = list(run_cells(cells(n), str(tmp_path), "cpu", curve_images=150))
    finals = {c: r for c, r in sub if r["kind"] == "final"}
    picked = curve_subset(len(next(iter(finals.values()))["labels"]), 150)
    assert [(c, r["kind"]) for c, r in full] == [(c, r["kind"]) for c, r in sub]
    for (cell_id, whole), (_, part) in zip(full, sub, strict=True):
        if part["kind"] == "final":
            np.testing.assert_array_equal(whole["scores"], part["scores"])
            for key in ("auroc", "aupr_in", "aupr_out", "final_train_loss", "final_train_mse"):
                assert whole[key] == part[key], key
            continue
        assert whole["train_loss"] == part["train_loss"]  # training is untouched
        assert all(key in part for key in TEST_KEYS)  # every epoch has its curve point
        if part["epoch"] == 3:  # the last epoch's model is the final model: its curve
            final = finals[cell_id]  # point is the final scores' AUROC on the subsample
            expected = auroc(final["labels"][picked], final["scores"][picked])
            assert part["test_auroc"] == pytest.approx(expected, abs=1e-12)
            assert part["test_auroc"] != pytest.approx(whole["test_auroc"], abs=1e-12)


def test_the_study_file_sets_it_and_a_stored_study_refuses_a_change():
    assert parse_spec("study: s\n").run.curve_test_images == 0
    spec = parse_spec("study: s\nrun: {curve_test_images: 200}\n")
    assert spec.run.curve_test_images == 200
    with pytest.raises(SpecError, match="run.curve_test_images: expected a number >= 0"):
        parse_spec("study: s\nrun: {curve_test_images: -3}\n")
    with pytest.raises(SpecError, match="run.curve_test_images: 50 is not allowed; it must "
                                        "be 0 .every test image. or at least 200"):
        parse_spec("study: s\nrun: {curve_test_images: 50}\n")  # could hold no normal
    assert differences(parse_spec("study: s\n"), spec) == ["run.curve_test_images 0 -> 200"]
    assert differences(spec, parse_spec("study: s\nrun: {curve_test_images: 200, "
                                        "score_every: 2}\n")) == []


@pytest.mark.slow
def test_the_report_says_which_studies_curves_are_on_a_subsample(tmp_path):
    from analysis_data import grid, plus, write_study

    from analysis.report import build_report
    from study.store import ResultsStore

    write_study(tmp_path / "results", "s", grid("s", classes=3), plus(0.01))
    said = "every epoch's test figures are on a fixed random subsample"

    def report() -> str:
        out = build_report(["s"], results=str(tmp_path / "results"), out=str(tmp_path / "r"),
                           format=["md"])
        return out.read_text()

    assert said not in report()  # every test image: nothing to say
    ResultsStore(str(tmp_path / "results"), "s").write_study_json(
        {"study": "s", "spec_yaml": "study: s\nrun: {curve_test_images: 200}\n"})
    assert f"Test-AUROC curves of s (200 images): {said}" in report()


def test_describe_says_which_test_images_the_curves_are_on():
    from study.describe import curve_line

    assert curve_line(parse_spec("study: s\n")) == (
        "test curves: every epoch, on every test image (final metrics: every test image)")
    spec = parse_spec("study: s\nrun: {curve_test_images: 200, score_every: 5}\n")
    assert curve_line(spec) == ("test curves: every 5 epochs and the last, on a fixed "
                                "subsample of 200 test images (final metrics: every test image)")

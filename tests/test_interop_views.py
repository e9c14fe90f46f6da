"""Parameters as typed columns (analysis/param_views.py), the Python API (adstudy/) and one
number format per report column (analysis/number_format.py)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from analysis_data import write_study

import adstudy
from analysis.number_format import column_format, formatted
from analysis.views import connect, rows
from study.cell import Cell
from study.param_columns import columns
from trainables.param_records import PARAMS

CELLS = [
    Cell(study="pv", loss="lamp", loss_params="{}"),  # base l2 at its default
    Cell(study="pv", loss="lamp", loss_params='{"base":"l1","eps":0.01}'),
    Cell(study="pv", loss="mse", optimizer="sgd", optimizer_params='{"momentum":0.9}'),
    Cell(study="pv", loss="lmse", model="mlp_ae", model_params='{"hidden":[8,4],"init":"glorot"}'),
]


@pytest.fixture
def results(tmp_path) -> Path:
    write_study(tmp_path / "results", "pv", CELLS, auroc=lambda c: 0.8)
    return tmp_path / "results"


def test_a_parameter_shared_by_two_entries_has_one_kind():
    for field, entries in PARAMS.items():
        kinds: dict[str, set[str]] = {}
        for records in entries.values():
            for name, record in records.items():
                kinds.setdefault(name, set()).add(record.kind)
        assert {n: k for n, k in kinds.items() if len(k) > 1} == {}, field
        assert set(columns(field)) == set(kinds)


@pytest.mark.parametrize("read_only", [False, True])
def test_where_base_is_l1_finds_the_lamp_cell_and_defaults_are_filled_in(results, read_only):
    con = connect(str(results), read_only=read_only)
    found = rows(con, "SELECT cell_id FROM trials_loss WHERE base = 'l1'")
    assert [r["cell_id"] for r in found] == [CELLS[1].cell_id]
    by_id = {r["cell_id"]: r for r in rows(con, "SELECT * FROM trials_loss")}
    assert by_id[CELLS[0].cell_id]["base"] == "l2"  # the default, though not stored
    assert by_id[CELLS[1].cell_id]["eps"] == 0.01 and by_id[CELLS[0].cell_id]["eps"] == 0.001
    assert by_id[CELLS[0].cell_id]["detach"] is True
    assert by_id[CELLS[2].cell_id]["base"] is None  # mse has no base
    assert by_id[CELLS[2].cell_id]["auroc"] == pytest.approx(0.8)  # every trials column
    types = {r["column_name"]: r["column_type"] for r in rows(con, "DESCRIBE trials_loss")}
    assert (types["eps"], types["detach"], types["window"]) == ("DOUBLE", "BOOLEAN", "BIGINT")


def test_optimizer_model_and_dataset_views(results):
    con = connect(str(results))
    opt = {r["cell_id"]: r for r in rows(con, "SELECT * FROM trials_optimizer")}
    assert opt[CELLS[2].cell_id]["momentum"] == 0.9
    assert opt[CELLS[0].cell_id]["beta1"] == 0.9 and opt[CELLS[0].cell_id]["momentum"] is None
    model = {r["cell_id"]: r for r in rows(con, "SELECT * FROM trials_model")}
    assert model[CELLS[3].cell_id]["hidden"] == [8, 4]
    assert model[CELLS[0].cell_id]["channels"] == [16, 32, 64]
    data = rows(con, "SELECT dataset_seed, test_fraction, seed FROM trials_dataset LIMIT 1")
    assert data[0]["dataset_seed"] is None and data[0]["seed"] == 0  # no clash with trials.seed
    assert data[0]["test_fraction"] == pytest.approx(1 / 3)


def test_the_api_reads_tables_as_pandas_and_arrow(results, tmp_path):
    df = adstudy.table("SELECT loss_label, base FROM trials_loss ORDER BY cell_id",
                       str(results), ["pv"])
    assert len(df) == 4 and set(df.columns) == {"loss_label", "base"}
    arrow = adstudy.table("SELECT auroc FROM trials", str(results), ["pv"], kind="arrow")
    assert isinstance(arrow, pa.Table) and arrow.num_rows == 4
    with pytest.raises(ValueError, match="choose from"):
        adstudy.table("SELECT 1", str(results), ["pv"], kind="excel")
    spec = adstudy.parse_spec("study: api\ncompare: {loss: [mse, lmse]}\nvary: {seed: [0, 1]}\n")
    assert len(adstudy.expand(spec)) == 4


def test_one_number_format_per_column():
    spec = column_format([4.757e-05, 0.0002854, None, float("nan")])
    assert [formatted(v, spec) for v in (4.757e-05, 0.0002854)] == ["4.757e-05", "2.854e-04"]
    spec = column_format([0.5123, 0.03125, 12.0])
    assert [formatted(v, spec) for v in (0.5123, 0.03125, 12.0)] == ["0.51230", "0.03125",
                                                                   "12.00000"]
    assert formatted(None, spec) == "" and formatted(float("nan"), spec) == ""
    assert formatted(7, spec) == "7"  # whole numbers stay whole

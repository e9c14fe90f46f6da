import pytest

from study.cell import Cell
from study.errors import SpecError
from study.grid import count, expand
from study.spec import parse_spec
from study.store import ResultsStore

SPEC = """
study: g
compare:
  loss: [mse, lmse, {name: lamp, base: l1}]
vary:
  normal_class: [0, 1, 2]
  lr: [0.001, 0.01]
  seed: [0, 1]
fixed:
  dataset: digits
  model: {name: cae, channels: [8, 16, 32]}
  epochs: 3
"""


def test_expand_counts_every_combination():
    spec = parse_spec(SPEC)
    cells = expand(spec)
    assert count(spec) == 3 * 3 * 2 * 2 == len(cells)
    assert len({c.cell_id for c in cells}) == len(cells)


def test_expand_contents_cross_the_axes_over_fixed_values():
    cells = expand(parse_spec(SPEC))
    assert {(c.loss, c.loss_params) for c in cells} == {
        ("mse", "{}"), ("lmse", "{}"), ("lamp", '{"base":"l1"}')
    }
    assert {c.normal_class for c in cells} == {0, 1, 2}
    assert {c.seed for c in cells} == {0, 1}
    assert all(c.epochs == 3 and c.model_params == '{"channels":[8,16,32]}' for c in cells)
    assert all(c.study == "g" for c in cells)
    # Scientific axis first, values in file order.
    assert [c.loss for c in cells[:3]] == ["mse", "mse", "mse"]
    assert cells[0].label("loss") == "mse" and cells[-1].label("loss") == "lamp(base=l1)"


def test_cell_id_is_stable_and_independent_of_key_order():
    reordered = """
study: g
fixed:
  epochs: 3
  model: {channels: [8, 16, 32], name: cae}
  dataset: digits
vary:
  seed: [0, 1]
  lr: [0.001, 0.01]
  normal_class: [0, 1, 2]
compare:
  loss: [{base: l1, name: lamp}, lmse, mse]
"""
    assert {c.cell_id for c in expand(parse_spec(SPEC))} == {
        c.cell_id for c in expand(parse_spec(reordered))
    }
    # The id is a pure function of the fields (a literal value pins it across versions).
    assert Cell(study="x").cell_id == Cell(study="x").cell_id
    assert Cell(study="x").cell_id != Cell(study="x", seed=1).cell_id
    assert len(Cell(study="x").cell_id) == 12


def test_growing_an_axis_keeps_existing_cell_ids():
    small = {c.cell_id for c in expand(parse_spec(SPEC))}
    grown = {c.cell_id for c in expand(parse_spec(SPEC.replace("seed: [0, 1]", "seed: [0, 1, 2]")))}
    assert small < grown and len(grown - small) == len(small) // 2


def test_how_data_is_fetched_is_not_part_of_a_cells_identity():
    plain = Cell(study="x", dataset="mnist")
    fetched = Cell(study="x", dataset="mnist", dataset_params='{"download":true}')
    unverified = Cell(study="x", dataset="mnist", dataset_params='{"download":true,"verify":false}')
    assert plain.cell_id == fetched.cell_id == unverified.cell_id
    # ... while what the data is still is
    def npz(params: str) -> str:
        return Cell(study="x", dataset="npz", dataset_params=params).cell_id

    assert npz('{"download":true,"path":"a.npz"}') == npz('{"path":"a.npz"}')
    assert npz('{"path":"a.npz"}') != npz('{"path":"b.npz"}')


def test_turning_download_on_keeps_the_stored_study(tmp_path):
    from study.identity import choose_study

    spec = parse_spec("study: d\nfixed: {dataset: {name: mnist}}")
    (tmp_path / "d").mkdir()
    ResultsStore(str(tmp_path), "d").write_study_json({"study": "d", "spec_yaml": spec.source})
    fetching = parse_spec("study: d\nfixed: {dataset: {name: mnist, download: true}}")
    assert choose_study(fetching, str(tmp_path), new_version=False) == "d"
    other = parse_spec("study: d\nfixed: {dataset: {name: fashion_mnist, download: true}}")
    with pytest.raises(SpecError, match="dataset"):
        choose_study(other, str(tmp_path), new_version=False)

import pytest

from study.errors import SpecError
from study.spec import parse_spec

BASE = """
study: s
compare:
  loss: [mse, {name: lamp, base: l1}]
vary:
  lr: [1e-3, 0.01]
fixed:
  dataset: digits
  epochs: 2
"""


def test_parses_axes_and_normalises_values():
    spec = parse_spec(BASE)
    assert spec.study == "s"
    assert spec.compare == (("loss", (("mse", "{}"), ("lamp", '{"base":"l1"}'))),)
    assert spec.vary == (("lr", (0.001, 0.01)),)  # YAML's 1e-3 string read as a float
    assert dict(spec.fixed) == {"dataset": ("digits", "{}"), "epochs": 2}
    assert spec.scientific == ("loss",)


@pytest.mark.parametrize(
    "text, message",
    [
        ("study: s\nvary:\n  lr_rate: [0.1]\n",
         "unknown key 'lr_rate' in vary; did you mean 'lr'?"),
        ("study: s\nsearh: grid\n", "unknown key 'searh' in study file; did you mean 'search'?"),
        ("study: s\nvary:\n  lr: []\n", "vary.lr is empty"),
        ("study: s\nvary:\n  lr: 0.1\n", "vary.lr must be a list"),
        ("study: s\nfixed:\n  epochs: ten\n", "fixed.epochs: expected int, got 'ten'"),
        ("study: s\nfixed:\n  epochs: 2.5\n", "fixed.epochs: expected int, got 2.5"),
        ("study: s\nvary:\n  seed: [1, 1]\n", "vary.seed repeats a value"),
        ("study: s\nvary:\n  seed: [1]\nfixed:\n  seed: 2\n", "'seed' is in both vary and fixed"),
        ("study: ../x\n", "study name '../x' is not allowed"),
        ("study: /abs\n", "study name '/abs' is not allowed"),
        ("compare: {}\n", "missing key 'study'"),
        ("study: s\nfixed: {loss: [mse]}\n", "expected a name or a mapping with 'name'"),
        ("study: s\nresources: {gpu: -1}\n", "resources.gpu: expected a number >= 0, got -1"),
        ("study: s\nsearch: random\n",
         "search: 'random' is not allowed; choose from ['grid', 'optuna']"),
        ("study: [unclosed\n", "is not valid YAML"),
        ("- a\n- b\n", "must hold a mapping of keys"),
        ("study: s\nfixed:\n  loss_params: {eps: 0.1}\n", "unknown key 'loss_params' in fixed"),
    ],
)
def test_rejects_bad_input_naming_field_and_value(text, message):
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    assert message in str(err.value)

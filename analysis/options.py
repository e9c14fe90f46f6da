"""The options of the named queries (--baseline, --axis, --metric, --by, --last), checked
against whitelists before any of them lands in SQL. Light on purpose (no scipy, no
matplotlib): `adstudy sql` with plain SQL loads this and the views only."""

from __future__ import annotations

import dataclasses

from analysis.views import check_columns, label_column
from study.errors import SpecError

# Columns --metric may name: the test metrics, the final losses, the validation figures.
METRICS = ("auroc", "aupr_in", "aupr_out", "final_train_loss", "final_train_mse",
           "val_auroc", "val_recon_mse")
LAST_K = 5  # analysis.claim_inputs.LAST_K: epochs whose trend and oscillation are measured


@dataclasses.dataclass(frozen=True)
class Options:
    """Parameters of the named queries (each query uses the ones it needs)."""

    baseline: str = "mse"
    axis: str = "loss"
    metric: str = "auroc"
    by: tuple[str, ...] = ()
    last: int = LAST_K

    def __post_init__(self) -> None:
        """Every option that lands in SQL is checked against a whitelist first.

        Raises:
            SpecError: naming the option, the value and the choices.
        """
        if self.metric not in METRICS:
            raise SpecError(f"unknown metric {self.metric!r}; choose from {sorted(METRICS)}")
        try:
            label_column(self.axis)
            check_columns(self.by)
        except ValueError as err:
            raise SpecError(str(err)) from None
        if not isinstance(self.last, int) or self.last < 1:
            raise SpecError(f"--last {self.last!r} is not allowed; give a whole number >= 1")


DEFAULTS = Options()


def is_named(text: str) -> bool:
    """True when the text is one word (a query name, known or not), not SQL."""
    return len(text.split()) == 1 and text.strip().rstrip(";").isidentifier()

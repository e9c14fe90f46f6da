"""Small helpers kept at their old address: ``rows`` (analysis.views) for callers that
query through this module, and the Wilson interval (analysis.inference). The statistics
behind verdicts live in analysis.inference."""

from __future__ import annotations

from analysis.inference import ALPHA, wilson_ci
from analysis.views import rows

__all__ = ["ALPHA", "rows", "wilson_ci"]

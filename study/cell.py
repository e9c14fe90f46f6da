"""The cell vocabulary as the study and analysis layers name it.

Defined once in trainables/cell.py, the bottom of the house (it imports nothing of the
project, so the trainables never import study/); this module only gives it the study
layer's name.
"""

from trainables.cell import (
    CELL_DEFAULTS,
    CELL_FIELDS,
    CELL_TYPES,
    FETCH_PARAMS,
    LATER_FIELDS,
    MAX_STUDY_NAME,
    NAMED_FIELDS,
    Cell,
    canonical_json,
    named_text,
    study_name_problem,
    without_fetch_params,
)

__all__ = [
    "CELL_DEFAULTS", "CELL_FIELDS", "CELL_TYPES", "FETCH_PARAMS", "LATER_FIELDS",
    "MAX_STUDY_NAME", "NAMED_FIELDS", "Cell", "canonical_json", "named_text",
    "study_name_problem", "without_fetch_params",
]

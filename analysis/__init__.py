"""Analysis over stored results: DuckDB views, statistics, figures and reports.

Needs only DuckDB, pyarrow, numpy/scipy and matplotlib; never imports torch or ray.
"""

"""Which files of a study's table the store reads: only those it wrote, each checked.

A table folder (``trials/``, ``epochs/``, ``scores/``, ``landscape/summary/``, ...) holds
per-cell files ``<cell_id>.parquet`` (12 hex digits) and, once a study is compacted
(study.compaction), part files ``part-<32 hex>.parquet`` that the study's manifest
(``compacted.json``) lists. Every such file is checked before a reader uses it: its
footer reads, its columns have the table's types (a file written before a column existed
lacks it: that column reads as NULL), it has the key columns, and a per-cell file holds
rows of its own cell only (the footer's statistics of ``cell_id``). Anything else in the
folder (a stray or backup copy, another schema, a part no manifest lists, a damaged file)
is left out and named with the reason; temp files of writers at work (``.*.tmp``) are
skipped silently.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

CELL_FILE = re.compile(r"[0-9a-f]{12}\.parquet")
PART_FILE = re.compile(r"part-[0-9a-f]{32}\.parquet")
MANIFEST = "compacted.json"
KEY_COLUMNS = ("study", "cell_id")
READ_ERRORS = (OSError, ValueError, pa.ArrowException)  # a truncated or corrupt file
CHECK_THREADS = 16  # footers read at once (one request each on an object store)
FILES_PER_READ = 1000  # per-cell files read into one table at a time


@dataclasses.dataclass
class TableFiles:
    """The readable files of one table of one study, and what was left out."""

    cells: dict[str, str] = dataclasses.field(default_factory=dict)  # cell_id -> path
    parts: list[str] = dataclasses.field(default_factory=list)  # listed, checked parts
    problems: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> why

    @property
    def paths(self) -> list[str]:
        return [*self.cells.values(), *self.parts]


def is_temp(name: str) -> bool:
    """A writer's temp file (study.store: ``.<name>.<uuid>.tmp``), never a result."""
    return name.startswith(".") and name.endswith(".tmp")


def reason_of(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return text or type(err).__name__


def file_problem(fs: pafs.FileSystem, path: str, schema: pa.Schema,
                 cell_id: str | None = None) -> str:
    """Why the Parquet file at ``path`` cannot be read as part of a table of ``schema``
    ('' = it can). ``cell_id``: the file is that cell's own file."""
    try:
        meta = pq.read_metadata(path, filesystem=fs)
        found = meta.schema.to_arrow_schema()
    except READ_ERRORS as err:
        return f"unreadable: {reason_of(err)}"
    missing = [k for k in KEY_COLUMNS if k in schema.names and k not in found.names]
    if missing:
        return f"not a table of this store: no column {missing[0]!r}"
    for field in found:
        if field.name in schema.names and field.type != schema.field(field.name).type:
            want = schema.field(field.name).type
            return f"column {field.name!r} is {field.type}, not {want}: another schema"
    if cell_id is not None:
        held = _cell_ids_held(meta, found.get_field_index("cell_id"))
        if held - {cell_id}:
            return f"holds rows of cell {sorted(held - {cell_id})[0]!r}, not only its own"
    return ""


def _cell_ids_held(meta: pq.FileMetaData, column: int) -> set[str]:
    """The cell ids a file's row groups hold, from their statistics (empty when unknown)."""
    held: set[str] = set()
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(column).statistics
        if stats is not None and stats.has_min_max:
            held |= {stats.min, stats.max}
    return held


def read_manifest(fs: pafs.FileSystem, study_path: str) -> dict[str, Any]:
    """The study's compaction manifest ({"groups": [...]}; empty when never compacted).

    Raises:
        ValueError: when the manifest exists but is not JSON.
    """
    try:
        with fs.open_input_stream(f"{study_path}/{MANIFEST}") as stream:
            return json.loads(stream.read())
    except (FileNotFoundError, NotADirectoryError):
        return {"groups": []}


def listed_parts(manifest: dict[str, Any], table: str) -> set[str]:
    return {g[table] for g in manifest.get("groups", []) if table in g}


def table_files(fs: pafs.FileSystem, folder: str, schema: pa.Schema,
                parts: Iterable[str] = (), check: bool = True) -> TableFiles:
    """The files of one table folder a reader may use (see the module doc).

    Args:
        fs: the store's filesystem.
        folder: the table's folder, e.g. ``<root>/<study>/trials``.
        schema: the table's schema (study.schema).
        parts: the part file names the study's manifest lists for this table.
        check: read and check every file's footer (False: names only).
    """
    listed = set(parts)
    found = TableFiles()
    candidates: list[tuple[str, str | None]] = []
    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    for info in sorted(infos, key=lambda i: i.path):
        name = info.base_name
        if info.type == pafs.FileType.File and is_temp(name):
            continue
        if info.type == pafs.FileType.File and CELL_FILE.fullmatch(name):
            candidates.append((info.path, name.removesuffix(".parquet")))
        elif info.type == pafs.FileType.File and PART_FILE.fullmatch(name) and name in listed:
            candidates.append((info.path, None))
        elif info.type == pafs.FileType.File and PART_FILE.fullmatch(name):
            found.problems[info.path] = ("a part no compaction manifest lists (left by an "
                                         "interrupted compaction)")
        else:
            found.problems[info.path] = ("not a file this store writes (<cell_id>.parquet "
                                         "or a listed part)")
    problems = _check_all(fs, candidates, schema) if check else [""] * len(candidates)
    for (path, cell_id), problem in zip(candidates, problems, strict=True):
        if problem:
            found.problems[path] = problem
        elif cell_id is None:
            found.parts.append(path)
        else:
            found.cells[cell_id] = path
    return found


def _check_all(fs: pafs.FileSystem, candidates: list[tuple[str, str | None]],
               schema: pa.Schema) -> list[str]:
    if len(candidates) < 4:
        return [file_problem(fs, p, schema, c) for p, c in candidates]
    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        return list(pool.map(lambda pc: file_problem(fs, pc[0], schema, pc[1]), candidates))


def dataset(fs: pafs.FileSystem, paths: list[str], schema: pa.Schema) -> pads.Dataset:
    """A pyarrow dataset over checked files, with the table's schema (columns a file lacks
    read as NULL). Paths are taken literally: nothing is globbed."""
    return pads.dataset(paths, schema=schema, filesystem=fs, format="parquet")


def read_rows(fs: pafs.FileSystem, files: TableFiles, schema: pa.Schema,
              columns: list[str] | None = None,
              where: pads.Expression | None = None) -> tuple[pa.Table, dict[str, str]]:
    """Every row of a table's checked files, a cell's own file winning over a part's rows
    of that cell; and the files whose data could not be read after all (path -> why),
    left out. Returns (table, unreadable)."""
    bad: dict[str, str] = {}

    def read(paths: list[str], flt: pads.Expression | None) -> pa.Table:
        # One chunk per file would cost far more memory than the rows (a buffer per
        # column and file): files are read a slice at a time and each slice combined.
        table = dataset(fs, paths, schema).to_table(columns=columns, filter=flt)
        return table.combine_chunks()

    def read_each(paths: list[str], flt: pads.Expression | None) -> list[pa.Table]:
        out = []
        for start in range(0, len(paths), FILES_PER_READ):
            some = paths[start:start + FILES_PER_READ]
            try:
                out.append(read(some, flt))
            except READ_ERRORS:  # a damaged data page: read file by file
                for path in some:
                    try:
                        out.append(read([path], flt))
                    except READ_ERRORS as err:
                        bad[path] = f"unreadable: {reason_of(err)}"
        return out

    tables = read_each(list(files.cells.values()), where)
    if files.parts:
        own = ~pads.field("cell_id").isin(list(files.cells)) if files.cells else None
        flt = own if where is None else (where if own is None else where & own)
        tables += read_each(files.parts, flt)
    tables = [t for t in tables if t.num_rows] or [read([], where)]
    return pa.concat_tables(tables).combine_chunks(), bad

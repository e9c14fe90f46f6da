"""A data root on an object store (``run.data_root: s3://bucket/prefix``), mirrored to a
folder on each node that runs trials.

Every trial calls local_data_root before it loads data: the node's mirror of the URI is
brought up to date (a file is copied when it is missing or its size or modification time
differs from the stored object's) under a file lock, so the trials of one node copy each
file once, and a second study on the node copies nothing. The trainables then read plain
files, as from a local data root. Any filesystem pyarrow opens by URI works (s3://, gs://,
file://), with its usual credentials (an instance role, AWS_* variables); objects removed
from the store stay in the mirror.

    python -m study.data_mirror push ~/adstudy-data s3://MY-BUCKET/adstudy-data
    python -m study.data_mirror pull s3://MY-BUCKET/adstudy-data    # prints the mirror

The mirror lives under $ADSTUDY_DATA_CACHE (default ~/.cache/adstudy/mirror), one folder
per URI (scheme/bucket/prefix; the query, e.g. an endpoint_override, is not part of it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs
from filelock import FileLock

CACHE_ENV = "ADSTUDY_DATA_CACHE"
DEFAULT_CACHE = "~/.cache/adstudy/mirror"
CHUNK = 8 << 20


def is_uri(root: str) -> bool:
    return "://" in root


def shown(uri: str) -> str:
    """The URI without its query (which may hold an endpoint or keys), for messages."""
    return uri.split("?", 1)[0]


def local_data_root(root: str) -> str:
    """The folder a trial reads its data from: ``root`` itself unless it is a URI, else
    this node's mirror of it, brought up to date first.

    Raises:
        FileNotFoundError: for a URI that holds no file (or that this node's credentials
            cannot list), naming it.
    """
    if not is_uri(root):
        return root
    target = mirror_dir(root)
    mirror(root, target)
    return str(target)


def mirror_dir(uri: str) -> Path:
    """This node's folder for the URI: $ADSTUDY_DATA_CACHE/<scheme>/<bucket>/<prefix>."""
    parts = urlsplit(uri)
    names = [parts.scheme, parts.netloc, *parts.path.split("/")]
    names = [n for n in names if n and n not in (".", "..")]
    base = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
    return base.joinpath(*names)


def mirror(uri: str, target: Path) -> list[str]:
    """Copies every file under ``uri`` that ``target`` lacks or holds another version of;
    returns the relative paths copied. One process at a time per target (a file lock)."""
    fs, prefix = pafs.FileSystem.from_uri(uri)
    target.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target}.lock"):
        selector = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
        files = [i for i in fs.get_file_info(selector) if i.type == pafs.FileType.File]
        if not files:
            raise FileNotFoundError(
                f"run.data_root {shown(uri)!r} holds no file (or this node's credentials "
                "cannot list it); upload the data first: python -m study.data_mirror push "
                f"DIR {shown(uri)}")
        copied = []
        for info in files:
            relative = info.path[len(prefix):].lstrip("/")
            dest = target / relative
            if not is_current(dest, info):
                download(fs, info, dest)
                copied.append(relative)
    return copied


def is_current(dest: Path, info: pafs.FileInfo) -> bool:
    """The local copy has the object's size and modification time (set when copied)."""
    try:
        stat = dest.stat()
    except FileNotFoundError:
        return False
    same_time = info.mtime_ns is None or stat.st_mtime_ns == info.mtime_ns
    return stat.st_size == info.size and same_time


def download(fs: pafs.FileSystem, info: pafs.FileInfo, dest: Path) -> None:
    """The object into ``dest`` through a temporary name: a reader sees all of it or none."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    with fs.open_input_stream(info.path) as source, open(part, "wb") as sink:
        shutil.copyfileobj(source, sink, CHUNK)
    if info.mtime_ns is not None:
        os.utime(part, ns=(info.mtime_ns, info.mtime_ns))
    os.replace(part, dest)


def push(folder: str, uri: str) -> int:
    """Uploads every file under a local folder to ``uri`` (the same relative paths);
    returns the number of files."""
    source = Path(folder).expanduser()
    if not source.is_dir():
        raise FileNotFoundError(f"{folder!r} is not a folder")
    fs, prefix = pafs.FileSystem.from_uri(uri)
    pafs.copy_files(str(source.resolve()), prefix, source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=fs)
    return sum(1 for p in source.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.data_mirror", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("push", help="upload a local data folder to an object-store URI")
    up.add_argument("folder")
    up.add_argument("uri")
    down = verbs.add_parser("pull", help="mirror a URI here; print the local folder")
    down.add_argument("uri")
    args = parser.parse_args(argv)
    try:
        if args.verb == "push":
            print(f"{push(args.folder, args.uri)} files -> {shown(args.uri)}")
        else:
            print(local_data_root(args.uri))
    except (OSError, ValueError) as err:  # pyarrow's errors are OSErrors
        print(f"data_mirror {args.verb}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

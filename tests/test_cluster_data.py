"""A data root on an object store (study.data_mirror) against an S3 server on 127.0.0.1, the
check that a GPU Ray gave a trial is one torch can use, and their spec options."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from s3_loopback import s3_server

from study.cli import main as cli_main
from study.data_mirror import local_data_root, main, mirror, mirror_dir
from study.errors import SpecError
from study.landscape_store import data_root_of
from study.ray_trial import GpuUnusableError, trial_device
from study.spec import parse_spec
from study.store import ResultsStore
from trainables.datasets import load_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "mirror"
    monkeypatch.setenv("ADSTUDY_DATA_CACHE", str(folder))
    return folder


def digits_folder(folder: Path) -> Path:
    """The built-in digits as a user's npz file, plus a nested file."""
    images = load_dataset("digits", "~", {})
    folder.mkdir(parents=True)
    np.savez(folder / "digits.npz", x=np.concatenate([images.x_train, images.x_test]),
             y=np.concatenate([images.y_train, images.y_test]))
    (folder / "notes").mkdir()
    (folder / "notes" / "readme.txt").write_text("digits as npz\n")
    return folder


def test_a_pushed_folder_is_mirrored_once_and_loads_as_a_data_root(s3, cache, tmp_path):
    uri = s3.uri("data/pushed")
    assert main(["push", str(digits_folder(tmp_path / "data")), uri]) == 0
    objects = [k for k in s3.keys("data/pushed/") if not k.endswith("/")]  # not dir markers
    assert objects == ["data/pushed/digits.npz", "data/pushed/notes/readme.txt"]

    root = local_data_root(uri)
    assert Path(root) == cache / "s3" / s3.bucket / "data" / "pushed"  # no query in it
    assert (Path(root) / "notes" / "readme.txt").read_text() == "digits as npz\n"
    loaded = load_dataset("npz", root, {"path": "digits.npz"})
    assert len(loaded.x_train) + len(loaded.x_test) == 1797  # every digit, read back

    inode = (Path(root) / "digits.npz").stat().st_ino
    assert mirror(uri, Path(root)) == []  # up to date: nothing copied again
    assert local_data_root(uri) == root
    assert (Path(root) / "digits.npz").stat().st_ino == inode  # the same file, not a copy


def test_a_changed_object_is_copied_again(s3, cache):
    uri = s3.uri("data/changing")
    s3.client().put_object(Bucket=s3.bucket, Key="data/changing/a.txt", Body=b"first")
    assert Path(local_data_root(uri), "a.txt").read_bytes() == b"first"
    s3.client().put_object(Bucket=s3.bucket, Key="data/changing/a.txt", Body=b"second!")
    assert mirror(uri, mirror_dir(uri)) == ["a.txt"]
    assert Path(local_data_root(uri), "a.txt").read_bytes() == b"second!"


def test_nodes_pulling_at_once_each_get_whole_files(s3, cache, tmp_path):
    uri = s3.uri("data/shared")
    blob = os.urandom(3 << 20)
    s3.client().put_object(Bucket=s3.bucket, Key="data/shared/blob.bin", Body=blob)
    env = os.environ | {"ADSTUDY_DATA_CACHE": str(cache)}
    pulls = [subprocess.Popen([sys.executable, "-m", "study.data_mirror", "pull", uri], env=env,
                              cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120)[0].strip() for p in pulls]
    assert [p.returncode for p in pulls] == [0, 0, 0]
    assert set(outs) == {str(mirror_dir(uri))}
    assert (Path(outs[0]) / "blob.bin").read_bytes() == blob
    assert not list(Path(outs[0]).glob(".*.part"))  # no partial file left behind


def test_landscapes_read_a_stored_studys_uri_data_root_from_its_mirror(s3, cache, tmp_path):
    uri = s3.uri("data/landscape")
    s3.client().put_object(Bucket=s3.bucket, Key="data/landscape/x.npz", Body=b"npz")
    store = ResultsStore(str(tmp_path / "r"), "s")
    store.prepare()
    store.write_study_json({"study": "s", "spec_yaml": f"study: s\nrun: {{data_root: '{uri}'}}\n"})
    root = data_root_of(store)  # `adstudy landscape` trains on the driver: mirrored here
    assert Path(root, "x.npz").read_bytes() == b"npz" and root == str(mirror_dir(uri))


def test_an_empty_data_root_fails_naming_it_without_its_query(s3, cache):
    uri = s3.uri("data/nothing-here")
    with pytest.raises(FileNotFoundError) as caught:
        local_data_root(uri)
    message = str(caught.value)
    assert f"'s3://{s3.bucket}/data/nothing-here'" in message and "endpoint" not in message
    assert "python -m study.data_mirror push" in message


def test_a_local_data_root_is_used_as_it_is(cache):
    assert local_data_root("~/data") == "~/data"
    assert not cache.exists()


def test_the_driver_does_not_look_for_a_uri_data_roots_files_itself(tmp_path, capsys):
    spec_text = ("study: s\nfixed: {dataset: {name: npz, path: digits.npz}, epochs: 1}\n"
                 "run: {data_root: %s}\n")
    spec = parse_spec(spec_text % "s3://bucket/data")
    assert spec.run.files_root is None
    (tmp_path / "s.yaml").write_text(spec_text % "s3://bucket/data")
    results = str(tmp_path / "r")
    assert cli_main(["describe", str(tmp_path / "s.yaml")]) == 0
    assert "mirrored by each node before its trials" in capsys.readouterr().out
    assert cli_main(["submit", str(tmp_path / "s.yaml"), "--dry-run", "--results",
                     results]) == 0  # trials here would mirror the data: not refused
    assert "dry run: 1 cells would run" in capsys.readouterr().out
    (tmp_path / "local.yaml").write_text(spec_text % str(tmp_path / "no-data"))
    assert cli_main(["submit", str(tmp_path / "local.yaml"), "--dry-run", "--results",
                     results]) == 2
    assert "digits.npz' not found" in capsys.readouterr().err


def cuda_usable() -> bool:
    import torch

    return torch.cuda.is_available()


def test_a_trial_without_a_gpu_trains_on_the_cpu():
    assert trial_device("auto", []) == "cpu"
    assert trial_device("cpu", ["0"]) == "cpu"


@pytest.mark.skipif(cuda_usable(), reason="CUDA is usable here: no unusable GPU to refuse")
def test_a_gpu_torch_cannot_use_fails_with_the_reason_unless_the_spec_falls_back():
    with pytest.raises(GpuUnusableError) as caught:
        trial_device("auto", ["0"])
    message = str(caught.value)
    assert "Ray assigned GPU 0" in message and "gpu_fallback: cpu" in message
    assert "CUDA_VISIBLE_DEVICES" in message
    with pytest.raises(GpuUnusableError, match="run.device is 'cuda'"):
        trial_device("cuda", [])
    assert trial_device("auto", ["0"], fallback="cpu") == "cpu"
    assert trial_device("cuda", [], fallback="cpu") == "cpu"


@pytest.mark.skipif(not cuda_usable(), reason="needs a GPU torch can use")
def test_a_usable_gpu_is_used():
    assert trial_device("auto", ["0"]) == "cuda" == trial_device("cuda", [])


@pytest.mark.parametrize("run, message", [
    ("{gpu_fallback: gpu}", "run.gpu_fallback: 'gpu' is not allowed; choose from ['none', 'cpu']"),
    ("{device: 'cuda:0'}", "run.device: 'cuda:0' is not allowed; choose from ['auto', 'cpu', "),
])
def test_the_run_options_choices_are_checked_before_any_work(run, message):
    with pytest.raises(SpecError) as caught:
        parse_spec(f"study: s\nrun: {run}\n")
    assert message in str(caught.value)
    assert parse_spec("study: s\nrun: {gpu_fallback: cpu}\n").run.gpu_fallback == "cpu"

"""`adstudy` as a user runs it, in its own process (issue 15): --version, help with
defaults and an example per command, a pipe closed early, the first line of `submit`
before torch or Ray is loaded, --dry-run, a complete study resubmitted, describe
(every problem in one run, identical messages collapsed, torch-free once checked), the
SQL shell on a terminal. None of these starts Ray: tests/test_reliability_faults.py runs
the drivers that do (exit 1 on a failed cell, exit 130 on Ctrl-C, Ray's output kept out)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from study.cli import parser
from study.grid import expand
from study.spec import parse_spec
from study.store import ResultsStore

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
SMALL = """
study: small
compare:
  loss: [mse, lmse]
vary:
  seed: [0, 1]
fixed:
  dataset: digits
  epochs: 2
"""


def adstudy(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "study.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, **(env or {})}, timeout=300,
                          **kwargs)


def stored(root: Path, text: str) -> ResultsStore:
    """A results root holding every cell of ``text`` (no training) and its study.json."""
    spec = parse_spec(text)
    store = ResultsStore(str(root), spec.study)
    store.prepare()
    for cell in expand(spec):
        store.write_cell(cell, {"status": "complete", "auroc": 0.5, "scores": [0.1, 0.9],
                                "labels": [0, 1]}, [{"epoch": 1, "train_loss": 0.1}])
    store.write_study_json({"study": spec.study, "spec_yaml": text})
    return store


def test_version_names_adstudy_ray_and_torch():
    done = adstudy("--version")
    assert done.returncode == 0
    assert re.fullmatch(r"adstudy \S+( \(git \w+\))?, ray \S+, torch \S+\n", done.stdout)


def test_every_command_helps_with_its_defaults_and_an_example():
    commands = parser()._subparsers._group_actions[0].choices  # what the CLI registers
    assert {"describe", "submit", "sql", "report", "landscape"} <= set(commands)
    for name in commands:
        done = adstudy(name, "--help")
        assert done.returncode == 0, name
        example = done.stdout.split("example:\n")[1].splitlines()[0].strip()
        assert example.startswith(f"adstudy {name} "), name
        assert "(default: " in done.stdout, name
    submit = adstudy("submit", "--help").stdout
    words = " ".join(submit.split())  # as wrapped for the terminal's width
    assert "(default: results)" in words and "(default: 10.0)" in words
    assert "--dry-run" in submit and "--verbose" in submit
    assert "130  interrupted" in submit and "1    some cells failed" in submit


def test_a_pipe_closed_early_ends_quietly_like_a_unix_tool(tmp_path):
    stored(tmp_path, SMALL)
    command = (f"set -o pipefail; {sys.executable} -m study.cli sql "
               f"'select * from range(1000000)' --results {tmp_path} --format csv | head -1")
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.stdout == "range\n"
    assert done.stderr == ""  # no BrokenPipeError traceback
    assert done.returncode == 141  # 128 + SIGPIPE, as `yes | head -1` reports


def test_submit_says_its_first_line_before_loading_torch_or_ray(tmp_path):
    env = {"ADSTUDY_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}  # checks to run
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "study.cli", "submit", str(QUICKSTART),
         "--results", str(tmp_path / "results"), "--dry-run"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    lines = done.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("[quickstart]"))
    assert lines[first] == "[quickstart] 160 cells in the study, 0 stored, 160 to run"
    heavy = [i for i, line in enumerate(lines) if re.search(r"\|\s+(torch|ray)(\.\S+)?$", line)]
    assert heavy, "the checks load torch (a cold cache)"
    assert first < min(heavy)
    assert not any(re.search(r"\|\s+ray(\.\S+)?$", line) for line in lines)  # a dry run


def test_a_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    results = tmp_path / "results"
    done = adstudy("submit", str(QUICKSTART), "--results", str(results), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "160 to run" in done.stdout and "dry run: 160 cells would run" in done.stdout
    assert not results.exists()


def test_a_complete_study_resubmitted_loads_neither_torch_nor_ray_and_writes_nothing(tmp_path):
    store = stored(tmp_path, SMALL)
    config = tmp_path / "small.yaml"
    config.write_text(SMALL)
    record = (tmp_path / "small" / "study.json").read_bytes()
    code = ("import sys\nfrom study.cli import main\n"
            f"code = main(['submit', {str(config)!r}, '--results', {str(tmp_path)!r}])\n"
            "print('LOADED', [m for m in ('torch', 'ray') if m in sys.modules])\n"
            "sys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"nothing to run: every cell is stored in {store.path}" in done.stdout
    assert "LOADED []" in done.stdout
    assert (tmp_path / "small" / "study.json").read_bytes() == record


def test_every_problem_of_a_spec_is_reported_in_one_run(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("study: bad\nvary:\n  lr_rate: [0.1]\n  seed: []\n"
                      "fixed:\n  epochs: ten\nrun: {max_failures: many}\n")
    done = adstudy("describe", str(config))
    assert done.returncode == 2
    assert f"4 problems in {config}:" in done.stderr
    for words in ("unknown key 'lr_rate' in vary; did you mean 'lr'?", "vary.seed is empty",
                  "fixed.epochs: expected int, got 'ten'", "run.max_failures: expected"):
        assert words in done.stderr
    # a spec that parses, with three cells no trainer could run
    config.write_text("study: bad\ncompare:\n  loss: [mse, lmsee]\n"
                      "vary:\n  normal_class: [0, 10]\n  lr: [0.001, -0.1]\n")
    done = adstudy("submit", str(config), "--results", str(tmp_path / "results"))
    assert done.returncode == 2 and "3 problems" in done.stderr
    for words in ("unknown loss 'lmsee'; did you mean 'lmse'?",
                  "normal_class: 10 is not a class of dataset 'digits'",
                  "lr: -0.1 is not allowed; it must be > 0"):
        assert done.stderr.count(words) == 1, words
    assert not (tmp_path / "results").exists()


def test_describe_collapses_one_message_for_many_folders_into_one_line(tmp_path):
    done = adstudy("describe", str(ROOT / "configs" / "lamp_mvtec.yaml"), "--results",
                   str(tmp_path), env={"ADSTUDY_DATA": str(tmp_path / "no-data")})
    assert done.returncode == 0, done.stderr  # the data may live on the cluster
    mvtec = [line for line in done.stdout.splitlines() if "dataset 'mvtec'" in line]
    assert len(mvtec) == 1  # not 15 times the same 300 characters
    assert "mvtec_ad/{bottle, cable, capsule," in mvtec[0] and "wood}/train/good" in mvtec[0]


def test_describe_loads_no_torch_once_the_same_cells_passed(tmp_path):
    code = ("import sys\nfrom study.cli import main\n"
            f"code = main(['describe', {str(QUICKSTART)!r}, '--results', {str(tmp_path)!r}])\n"
            "print('TORCH', 'torch' in sys.modules)\nsys.exit(code)\n")
    env = {**os.environ, "ADSTUDY_CACHE": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, env=env, timeout=300) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert "TORCH True" in runs[0].stdout and "TORCH False" in runs[1].stdout
    assert runs[0].stdout.replace("TORCH True", "") == runs[1].stdout.replace("TORCH False", "")
    assert "checks: every field" in runs[1].stdout and "0 stored, 160 to run" in runs[1].stdout


def read_until(fd: int, seen: bytearray, wanted: bytes, count: int = 1) -> None:
    deadline = time.monotonic() + 120
    while seen.count(wanted) < count:
        assert time.monotonic() < deadline, bytes(seen)[-2000:]
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            seen.extend(os.read(fd, 65536))


def test_the_sql_shell_edits_lines_keeps_history_and_runs_named_queries_without_a_semicolon(
    tmp_path
):
    stored(tmp_path / "results", SMALL)
    history = tmp_path / "history"
    master, slave = pty.openpty()
    env = {**os.environ, "ADSTUDY_HISTORY": str(history), "TERM": "xterm"}
    shell = subprocess.Popen([sys.executable, "-m", "study.cli", "sql", "--results",
                              str(tmp_path / "results")], cwd=ROOT, env=env, stdin=slave,
                             stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    seen = bytearray()
    try:
        read_until(master, seen, b"adstudy> ")
        os.write(master, b"select 40 + 2 as answer;\r")
        read_until(master, seen, b"| 42 |")
        read_until(master, seen, b"adstudy> ", count=2)  # readline has the terminal again
        os.write(master, b"\x1b[A\r")  # the up arrow brings the statement back
        read_until(master, seen, b"| 42 |", count=2)
        os.write(master, b".help\r")
        read_until(master, seen, b".tables   the views")
        os.write(master, b"unpaired\r")  # a named query, no ';'
        read_until(master, seen, b"adstudy> ", count=5)
        os.write(master, b".quit\r")
        assert shell.wait(timeout=60) == 0
    finally:
        shell.kill()
        os.close(master)
    text = seen.decode(errors="replace")
    assert "^[[A" not in text and "error" not in text.split("unpaired")[-1]
    assert "select 40 + 2 as answer;" in history.read_text().splitlines()


@pytest.mark.parametrize("mode", ["piped"])
def test_named_queries_run_without_a_semicolon_and_help_is_there_when_piped(tmp_path, mode):
    stored(tmp_path, SMALL)
    done = adstudy("sql", "--results", str(tmp_path),
                   input=".help\nconvergence\nselect 6 * 7 as n\n;\n")
    assert done.returncode == 0, done.stdout
    assert ".tables   the views and their columns" in done.stdout
    assert "| 42 |" in done.stdout and "error" not in done.stdout

"""adstudy against the Ray Tune script a competent user writes (issue 21), end to end.

The peer: a function trainable (a torch DataLoader loop over the project's own data and
CAE, Adam, the cell's loss; sklearn's AUROC of the test reconstruction errors once at the
end), one trial per cell, ``reuse_actors=True``, the study file's grid as Tune grid
axes, Tune's default result logging. Both sides run as whole processes (Python start,
imports, Ray start, the study, Ray's shutdown) into a fresh folder, in interleaved pairs
(the order alternates) so the shared machine's load falls on both; the ratio is the
median peer wall time over the median adstudy wall time. For adstudy it also prints when
its first line came (seconds from the start of the command).

Each round also times the **floor**: a Ray Tune program with no study in it (Ray started
as adstudy starts it, one trial per trial slot, each importing torch and reporting, reused
actors): the Python start, imports, Ray's start, Tune's set-up, the trial processes' torch
import and Ray's shutdown that a tool running torch trials on Ray Tune pays here. It
bounds the ratio such a tool can reach here (peer / floor: no time at all for the
study's cells), and gives the ratio of the time past it ((peer - floor) / (adstudy -
floor)).

    python -m bench.peer [--pairs 2] [--studies quickstart lmse_mnist_smoke] [--cpus 2]
                         [--classes N] [--epochs N]   # reduced: first N classes / epochs
    python -m bench.peer --peer CONFIG --out DIR [--cpus 2]   # the peer alone
    python -m bench.peer --floor --out DIR [--cpus 2]          # the floor alone

The real-MNIST study reads mnist5k.npz from $ADSTUDY_DATA (default ../shared/data); it is
skipped, with the reason, when the file is absent.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ADSTUDY_DATA") or ROOT.parent / "shared" / "data")
STUDIES = {"quickstart": ROOT / "configs" / "quickstart.yaml",
           "lmse_mnist_smoke": ROOT / "configs" / "lmse_mnist_smoke.yaml"}
AXES = ("loss", "normal_class", "lr", "latent_dim", "seed")  # the columns a cell is known by


# --- the peer: what a Ray Tune user writes ---------------------------------------------

def peer_trainable(config: dict[str, Any]) -> None:
    """One cell: the project's data and CAE, a DataLoader loop, AUROC once at the end."""
    import torch
    from ray import tune
    from sklearn.metrics import roc_auc_score
    from torch.utils.data import DataLoader, TensorDataset

    from trainables.assemble import build_loss, build_model, build_task
    from trainables.cell import Cell

    cell = Cell.from_dict(config)
    task = build_task(cell, config["data_root"])
    torch.manual_seed(cell.seed)
    model = build_model(cell, task.train_x.shape[1:])
    loss_fn, _ = build_loss(cell)
    optimizer = torch.optim.Adam(model.parameters(), lr=cell.lr)
    loader = DataLoader(TensorDataset(torch.tensor(task.train_x)), batch_size=cell.batch_size,
                        shuffle=True)
    for _ in range(cell.epochs):
        model.train()
        for (x,) in loader:
            loss = loss_fn(model(x), x).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        test_x = torch.tensor(task.test_x)
        errors = ((model(test_x).recon - test_x) ** 2).flatten(1).mean(1).numpy()
    tune.report({"auroc": float(roc_auc_score(task.test_y, errors)),
                 "final_loss": float(loss.item())})


def named(value: Any) -> tuple[str, str]:
    """A study file's named value ('mse' or {name: npz, path: ...}) as (name, params JSON)."""
    from trainables.cell import canonical_json

    if isinstance(value, dict):
        rest = {k: v for k, v in value.items() if k != "name"}
        return value["name"], canonical_json(rest)
    return value, "{}"


def param_space(study: dict[str, Any], data_root: str) -> dict[str, Any]:
    """The study file's axes as Tune grid axes, its fixed values as constants."""
    from ray import tune

    from trainables.cell import NAMED_FIELDS

    space: dict[str, Any] = {"study": study["study"], "data_root": data_root}
    for field, value in (study.get("fixed") or {}).items():
        if field in NAMED_FIELDS:
            space[field], space[f"{field}_params"] = named(value)
        else:
            space[field] = value
    for section in ("compare", "vary"):
        for field, values in (study.get(section) or {}).items():
            space[field] = tune.grid_search(values)
    return space


def peer_rows(study: dict[str, Any], data_root: str, storage: str) -> list[dict[str, Any]]:
    """The peer's study on the running Ray: one trial per cell, reused actors; each cell's
    axis values and AUROC."""
    from ray import tune

    tuner = tune.Tuner(
        tune.with_resources(peer_trainable, {"cpu": 1}),
        param_space=param_space(study, data_root),
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(name=study["study"], storage_path=os.path.abspath(storage)),
    )
    rows = []
    for result in tuner.fit():
        if result.error is not None:
            raise RuntimeError(f"a peer trial failed: {result.error}")
        rows.append({a: result.config[a] for a in AXES} | {"auroc": result.metrics["auroc"]})
    return rows


def run_peer(config: str, out: str, cpus: int | None) -> None:
    """The peer's main: Ray started, the study, a CSV of the cells' AUROCs."""
    import ray

    study = yaml.safe_load(Path(config).read_text())
    ray.init(num_cpus=cpus, include_dashboard=False)
    rows = peer_rows(study, str(DATA), out)
    with open(Path(out) / "peer.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*AXES, "auroc"])
        writer.writeheader()
        writer.writerows(rows)
    ray.shutdown()


# --- the floor: a Ray Tune program with no study in it ------------------------------------

def floor_trainable(config: dict[str, Any]) -> None:
    """What every trial of a torch study pays before its first cell: torch's import."""
    import torch  # noqa: F401
    from ray import tune

    tune.report({"slot": config["slot"]})


def floor_rows(slots: int, storage: str) -> list[dict[str, Any]]:
    """One trial per slot on the running Ray, reused actors; the trials' reports."""
    from ray import tune

    tuner = tune.Tuner(
        tune.with_resources(floor_trainable, {"cpu": 1}),
        param_space={"slot": tune.grid_search(list(range(slots)))},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(name="floor", storage_path=os.path.abspath(storage)),
    )
    return [dict(result.metrics) for result in tuner.fit()]


def run_floor(out: str, cpus: int) -> None:
    """The floor's main: Ray started as adstudy starts it (the leanest start known here),
    ``cpus`` trials that import torch, Ray stopped."""
    import ray

    from study.runner import init_ray

    init_ray(None, num_cpus=cpus)
    rows = floor_rows(cpus, out)
    if sorted(r["slot"] for r in rows) != list(range(cpus)):
        raise RuntimeError(f"the floor's trials reported {rows}")
    ray.shutdown()


# --- the race ---------------------------------------------------------------------------

def reduced(config: Path, classes: int | None, epochs: int | None, folder: str) -> Path:
    """The study file with only its first ``classes`` normal classes and ``epochs``."""
    if classes is None and epochs is None:
        return config
    study = yaml.safe_load(config.read_text())
    if classes is not None:
        study["vary"]["normal_class"] = study["vary"]["normal_class"][:classes]
    if epochs is not None:
        study["fixed"]["epochs"] = epochs
    path = Path(folder) / config.name
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float | None, str]:
    """(wall seconds, seconds to the first line of stdout, the output) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT, env=env)
    first, lines = None, []
    for line in proc.stdout:
        if first is None and line.strip():
            first = time.perf_counter() - start
        lines.append(line)
    proc.wait()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n"
                           + "".join(lines[-30:]))
    return wall, first, "".join(lines)


def peer_cells(out: str) -> list[dict[str, str]]:
    with open(Path(out) / "peer.csv") as f:
        return list(csv.DictReader(f))


def adstudy_cells(results: str, study: str) -> list[dict[str, Any]]:
    import pyarrow.dataset as ds

    table = ds.dataset(Path(results) / study / "trials", format="parquet").to_table(
        columns=[*AXES, "auroc", "status"])
    return table.to_pylist()


def one_pair(config: Path, study: str, cpus: int, peer_first: bool, env: dict[str, str]
             ) -> dict[str, Any]:
    """Both sides and the floor once, in the given order (the floor last), each into a
    fresh folder."""
    adstudy = str(Path(sys.executable).parent / "adstudy")
    out: dict[str, Any] = {}
    for side in (("peer", "adstudy") if peer_first else ("adstudy", "peer")) + ("floor",):
        with tempfile.TemporaryDirectory(prefix=f"peer-{side}-") as folder:
            if side == "floor":
                cmd = [sys.executable, "-m", "bench.peer", "--floor", "--out", folder,
                       "--cpus", str(cpus)]
                out["floor"], _, _ = timed(cmd, env)
            elif side == "peer":
                cmd = [sys.executable, "-m", "bench.peer", "--peer", str(config),
                       "--out", folder, "--cpus", str(cpus)]
                out["peer"], _, _ = timed(cmd, env)
                out["peer_cells"] = peer_cells(folder)
            else:
                cmd = [adstudy, "submit", str(config), "--results", folder]
                # a cold check cache (study.validate): the driver's torch import and
                # probe are paid as by a study submitted for the first time
                cold = env | {"ADSTUDY_CACHE": f"{folder}/cache"}
                out["adstudy"], out["first_line"], _ = timed(cmd, cold)
                out["adstudy_cells"] = adstudy_cells(folder, study)
    return out


def race(name: str, config: Path, pairs: int, cpus: int) -> float | None:
    """Prints one study's pairs and ratio; returns the ratio (None: skipped)."""
    if name == "lmse_mnist_smoke" and not (DATA / "mnist5k.npz").exists():
        print(f"## {name}: skipped: {DATA / 'mnist5k.npz'} is absent (set ADSTUDY_DATA)")
        return None
    env = os.environ | {"ADSTUDY_DATA": str(DATA), "PYTHONPATH": str(ROOT)}
    study = yaml.safe_load(config.read_text())["study"]
    print(f"## {name} ({config.name}), {cpus} CPUs, load before: {os.getloadavg()[0]:.2f}")
    print("| pair | order | peer s | adstudy s | adstudy first line s | floor s "
          "| peer/adstudy |")
    print("|---|---|---|---|---|---|---|")
    peers, ours, floors = [], [], []
    for i in range(pairs):
        r = one_pair(config, study, cpus, peer_first=i % 2 == 0, env=env)
        check_same_cells(r["peer_cells"], r["adstudy_cells"])
        peers.append(r["peer"])
        ours.append(r["adstudy"])
        floors.append(r["floor"])
        order = "peer, adstudy, floor" if i % 2 == 0 else "adstudy, peer, floor"
        print(f"| {i + 1} | {order} | {r['peer']:.1f} | {r['adstudy']:.1f} | "
              f"{r['first_line']:.1f} | {r['floor']:.1f} | {r['peer'] / r['adstudy']:.2f}x |",
              flush=True)
    peer, ours_s, floor = (statistics.median(x) for x in (peers, ours, floors))
    ratio = peer / ours_s
    print(f"{name}: {len(r['peer_cells'])} cells; median peer {peer:.1f} s, adstudy "
          f"{ours_s:.1f} s: adstudy is **{ratio:.2f}x** the peer's speed; mean AUROC peer "
          f"{mean_auroc(r['peer_cells']):.3f}, adstudy {mean_auroc(r['adstudy_cells']):.3f}; "
          f"load after: {os.getloadavg()[0]:.2f}")
    print(f"{name}: {floor_line(peer, ours_s, floor)}")
    return ratio


def floor_line(peer: float, ours: float, floor: float) -> str:
    """What the floor (median seconds) says of the ratio: its bound, and the ratio of the
    seconds past it."""
    past = f"{(peer - floor) / (ours - floor):.2f}x" if ours > floor else "n/a (at the floor)"
    return (f"floor {floor:.1f} s: a Ray Tune tool reaches at most {peer / floor:.2f}x here "
            f"(3x needs {peer / 3:.1f} s); past the floor adstudy is {past} the peer's speed "
            f"({peer - floor:.1f} s against {ours - floor:.1f} s)")


def cell_key(row: dict[str, Any]) -> tuple:
    return (str(row["loss"]), int(row["normal_class"]), float(row["lr"]),
            int(row["latent_dim"]), int(row["seed"]))


def check_same_cells(peer: list[dict], ours: list[dict]) -> None:
    """Both sides ran the same cells, each once."""
    a, b = sorted(map(cell_key, peer)), sorted(map(cell_key, ours))
    if a != b:
        raise RuntimeError(f"the peer ran {len(a)} cells, adstudy {len(b)}: not the same grid")


def mean_auroc(rows: list[dict]) -> float:
    return statistics.fmean(float(r["auroc"]) for r in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--studies", nargs="+", choices=list(STUDIES), default=list(STUDIES))
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of each local Ray")
    parser.add_argument("--classes", type=int, help="reduced: the first N normal classes")
    parser.add_argument("--epochs", type=int, help="reduced: N epochs")
    parser.add_argument("--peer", metavar="CONFIG", help="run the peer alone on CONFIG")
    parser.add_argument("--floor", action="store_true",
                        help="run the floor alone (a Ray Tune program with no study)")
    parser.add_argument("--out", help="the output folder (with --peer or --floor)")
    args = parser.parse_args(argv)
    if args.peer:
        run_peer(args.peer, args.out, args.cpus)
        return
    if args.floor:
        run_floor(args.out, args.cpus)
        return
    print(f"# adstudy vs a Ray Tune script with reuse_actors=True ({args.pairs} pairs)")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.studies:
            race(name, reduced(STUDIES[name], args.classes, args.epochs, folder),
                 args.pairs, args.cpus)


if __name__ == "__main__":
    main()

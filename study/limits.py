"""What a trial asks of the cluster, checked against what the cluster has, before any trial.

A local Ray never grows: a trial asking for more CPUs or GPUs than it has would wait
forever, and ``run.device: cuda`` on a machine without a GPU fails every cell, so both are
refused. A joined cluster may grow (its autoscaler, cluster.yaml), so there each is a note.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from study.errors import SpecError
from study.spec import StudySpec


def resource_problems(spec: StudySpec, total: Mapping[str, float]) -> list[str]:
    """Why the spec's trials could never start on a cluster of ``total`` resources (Ray's
    cluster_resources(): "CPU", "GPU")."""
    cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    found = []
    if spec.resources.cpu > cpus:
        found.append(f"resources.cpu: {spec.resources.cpu:g} asks for more CPUs per trial "
                     f"than the Ray cluster has ({cpus:g}); a trial would never start: set "
                     f"resources.cpu to at most {cpus:g}")
    if spec.resources.gpu and not gpus:
        found.append(f"resources.gpu: {spec.resources.gpu} asks for a GPU share per trial, "
                     "but the Ray cluster has no GPU; set resources.gpu: 0 to train on CPUs "
                     "(the paper presets ask for a quarter GPU a trial)")
    elif spec.resources.gpu > gpus:
        found.append(f"resources.gpu: {spec.resources.gpu:g} asks for more GPUs per trial "
                     f"than the Ray cluster has ({gpus:g}); set resources.gpu to at most "
                     f"{gpus:g}")
    if spec.run.device == "cuda" and not gpus:
        found.append("run.device: 'cuda' but the Ray cluster has no GPU, so every cell would "
                     "fail; set run.device: auto (a GPU where a trial has one) or cpu")
    return found


def check_resources(spec: StudySpec, total: Mapping[str, float], joined: bool,
                    note: Callable[[str], None]) -> None:
    """Refuses (a local Ray) or notes (a joined cluster) every resource_problem.

    Raises:
        SpecError: on a local Ray, naming each problem.
    """
    problems = resource_problems(spec, total)
    if problems and not joined:
        raise SpecError("; ".join(problems))
    for problem in problems:
        note(f"[{spec.study}] note: {problem.split(';')[0]} yet; trials wait for a node "
             "that has it (the autoscaler may add one)\n")

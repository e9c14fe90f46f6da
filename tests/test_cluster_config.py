"""cluster.yaml against Ray's own launcher validator, and the cluster options of submit."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from study.errors import SpecError
from study.ray_trial import trial_device
from study.runner import cluster_address
from study.spec import parse_spec
from study.submit import submit

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "cluster.yaml"


def launcher_config(raw: dict) -> dict:
    """What `ray up` does with a config before using it: defaults filled in, validated."""
    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    return config


def on_prem_variant(text: str) -> dict:
    """The commented `local` provider block of cluster.yaml, as YAML."""
    lines = text.splitlines()
    start = lines.index("# provider:")
    block = []
    for line in lines[start:]:
        if line == "#":
            break
        block.append(line.removeprefix("# ").removeprefix("#"))
    return yaml.safe_load("\n".join(block))


def test_cluster_yaml_is_a_valid_launcher_config_with_an_autoscaling_gpu_worker():
    config = launcher_config(yaml.safe_load(CLUSTER_YAML.read_text()))
    head = config["available_node_types"][config["head_node_type"]]
    gpu_types = [t for t in config["available_node_types"].values() if t["resources"].get("GPU")]
    assert head["resources"]["GPU"] == 0 and len(gpu_types) == 1
    assert gpu_types[0]["min_workers"] == 0 < gpu_types[0]["max_workers"]  # autoscales
    assert config["file_mounts"]["~/adstudy"] == "."
    assert "~/.ray/auth_token" in config["file_mounts"]  # one token on every node
    for commands in ("head_setup_commands", "worker_setup_commands"):
        assert any("-e ~/adstudy" in c for c in config[commands])  # this project, every node
    for commands in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert any("RAY_AUTH_MODE=token ray start" in c for c in config[commands])


def test_the_commented_on_prem_variant_is_valid_too():
    raw = yaml.safe_load(CLUSTER_YAML.read_text())
    for key in ("provider", "auth", "available_node_types", "head_node_type"):
        raw.pop(key)
    raw |= on_prem_variant(CLUSTER_YAML.read_text())
    config = launcher_config(raw)
    assert config["provider"]["type"] == "local"
    assert len(config["provider"]["worker_ips"]) == config["max_workers"] == 2


def test_the_validator_rejects_a_broken_config():
    raw = yaml.safe_load(CLUSTER_YAML.read_text())
    raw["available_node_types"]["worker_gpu"]["min_wrokers"] = 1
    with pytest.raises(jsonschema.ValidationError, match="min_wrokers"):
        launcher_config(raw)


def test_the_address_falls_back_to_ray_address_as_a_ray_job_sets_it(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address(None) is None
    assert cluster_address("auto") == "auto"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert cluster_address(None) == "10.0.0.1:6379"
    assert cluster_address("auto") == "auto"


def test_a_ray_client_address_without_the_client_fails_before_any_work(tmp_path, monkeypatch):
    try:
        import grpc  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("ray[client] is installed here: ray:// addresses are usable")
    with pytest.raises(SpecError, match=r"'ray://head:10001' needs the Ray Client"):
        submit(parse_spec("study: s\n"), str(tmp_path), "ray://head:10001", out=io.StringIO())
    assert not (tmp_path / "s").exists()


def test_a_trial_trains_on_cpu_when_ray_assigns_a_gpu_cuda_cannot_use():
    import torch

    assert trial_device("auto", []) == "cpu"
    assert trial_device("auto", ["0"]) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert trial_device("cpu", ["0"]) == "cpu" and trial_device("cuda", []) == "cuda"

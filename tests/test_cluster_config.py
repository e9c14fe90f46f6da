"""What a user launches a cluster with, checked offline: cluster.yaml against Ray's own
launcher validator, the IAM policies of docs/iam/ against moto's IAM policy checks (on
127.0.0.1), k8s/rayjob.yaml against KubeRay's RayJob fields and Kubernetes' Pod schema,
and the cluster options of submit. Nothing here reaches a cloud."""

from __future__ import annotations

import copy
import io
import json
import re
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import ray
import yaml
from ray.autoscaler._private.providers import _get_node_provider_cls
from ray.autoscaler._private.util import prepare_config, validate_config
from s3_loopback import s3_server

from study.errors import SpecError
from study.runner import cluster_address
from study.spec import parse_spec
from study.submit import submit

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
RAYJOB = ROOT / "k8s" / "rayjob.yaml"
DOCKERFILE = ROOT / "k8s" / "Dockerfile"
IAM = ROOT / "docs" / "iam"
TORCH = re.search(r"^TORCH := (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).strip()


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


def cluster_extra() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["cluster"]


def test_the_cluster_extra_pins_this_ray_with_its_jobs_api_and_the_aws_sdk():
    assert f"ray[default,tune]=={ray.__version__}" in cluster_extra()
    assert any(r.startswith("boto3") for r in cluster_extra())
    import aiohttp  # noqa: F401  (the dashboard and Jobs API: ray[default] is installed)

    # Where `ray up cluster.yaml` failed at once before: the AWS launcher needs boto3.
    assert _get_node_provider_cls({"type": "aws"}).__name__ == "AWSNodeProvider"


def test_cluster_yaml_is_a_valid_launcher_config_with_an_autoscaling_gpu_worker():
    config = launcher_config(yaml.safe_load(CLUSTER_YAML.read_text()))
    head = config["available_node_types"][config["head_node_type"]]
    gpu_types = [t for t in config["available_node_types"].values() if t["resources"].get("GPU")]
    assert head["resources"]["GPU"] == 0 and len(gpu_types) == 1
    assert gpu_types[0]["min_workers"] == 0 < gpu_types[0]["max_workers"]  # autoscales
    assert config["file_mounts"]["~/adstudy"] == "."
    assert "~/.ray/auth_token" in config["file_mounts"]  # one token on every node
    for commands in ("head_setup_commands", "worker_setup_commands"):
        assert f"pip install -q {TORCH}" in config[commands]  # the Makefile's torch
        assert 'pip install -q -e "$HOME/adstudy[cluster]"' in config[commands]
    for commands in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert any("RAY_AUTH_MODE=token ray start" in c for c in config[commands])


def test_every_node_runs_rays_image_of_this_ray_on_python_3_11_with_cuda_on_gpu_workers():
    config = launcher_config(yaml.safe_load(CLUSTER_YAML.read_text()))
    docker = config["docker"]
    assert docker["worker_image"] == f"rayproject/ray:{ray.__version__}-py311-gpu"
    assert docker["head_image"] == f"rayproject/ray:{ray.__version__}-py311-cpu"
    assert "--gpus all" in docker["worker_run_options"]
    assert f"\nFROM {docker['worker_image']}\n" in DOCKERFILE.read_text()  # k8s: the same
    for node_type in config["available_node_types"].values():
        image = node_type["node_config"]["ImageId"]  # EC2 resolves the current DLAMI
        assert image.startswith("resolve:ssm:/aws/service/deeplearning/ami/x86_64/")


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


def policy(name: str) -> dict:
    text = (IAM / name).read_text().replace("MY-BUCKET", "my-bucket")
    return json.loads(text.replace("ACCOUNT-ID", "123456789012"))


def allowed(document: dict, resource: str) -> set[str]:
    """The actions a policy allows on a resource ARN (its Allow statements, by pattern)."""
    actions: set[str] = set()
    for statement in document["Statement"]:
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if statement["Effect"] == "Allow" and any(
            re.fullmatch(re.escape(r).replace(r"\*", ".*"), resource) for r in resources
        ):
            listed = statement["Action"]
            actions |= {listed} if isinstance(listed, str) else set(listed)
    return actions


def test_the_iam_policies_are_what_the_nodes_of_cluster_yaml_need():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    profiles = {name: t["node_config"]["IamInstanceProfile"]["Name"]
                for name, t in config["available_node_types"].items()}
    assert profiles == {"head_cpu": "adstudy-head", "worker_gpu": "adstudy-worker"}
    head, worker = policy("head-policy.json"), policy("worker-policy.json")
    results = "arn:aws:s3:::my-bucket/adstudy/quickstart/trials/x.parquet"  # the docs' URIs
    data = "arn:aws:s3:::my-bucket/adstudy-data/mnist5k.npz"
    # The driver (head) writes, renames (copy + delete) and reads results; lists the bucket.
    assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"} <= allowed(head, results)
    assert "s3:ListBucket" in allowed(head, "arn:aws:s3:::my-bucket")
    assert allowed(worker, results) == set()  # workers never touch results ...
    assert allowed(worker, data) == {"s3:GetObject"}  # ... and only read the data
    assert "s3:ListBucket" in allowed(worker, "arn:aws:s3:::my-bucket")
    # The autoscaler on the head launches workers with their role, and no other role.
    assert {"ec2:RunInstances", "ec2:TerminateInstances"} <= allowed(head, "*")
    assert allowed(head, "arn:aws:iam::123456789012:role/adstudy-worker") >= {"iam:PassRole"}
    assert "iam:PassRole" not in allowed(head, "arn:aws:iam::123456789012:role/admin")


def test_aws_iam_accepts_the_policy_documents():
    """moto's IAM (on 127.0.0.1) checks policy documents as AWS does: syntax, actions'
    form, ARNs, condition operators."""
    with s3_server() as server:
        iam = server.client("iam")
        trust = (IAM / "ec2-trust.json").read_text()
        for node in ("head", "worker"):
            iam.create_role(RoleName=f"adstudy-{node}", AssumeRolePolicyDocument=trust)
            iam.put_role_policy(RoleName=f"adstudy-{node}", PolicyName="adstudy",
                                PolicyDocument=json.dumps(policy(f"{node}-policy.json")))
        with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
            iam.create_policy(PolicyName="broken", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3"}]}))


# The fields of KubeRay's RayJob (ray.io/v1) this manifest uses, with their types as
# KubeRay's CRD declares them (ray-operator/config/crd/bases/ray.io_rayjobs.yaml).
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
POD_TEMPLATE = {"type": "object", "required": ["spec"],
                "properties": {"metadata": {"type": "object"}, "spec": {"type": "object"}}}
RAYJOB_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"}, "kind": {"const": "RayJob"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {"type": "object", "additionalProperties": False, "properties": {
            "entrypoint": {"type": "string"}, "runtimeEnvYAML": {"type": "string"},
            "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode",
                                        "SidecarMode"]},
            "backoffLimit": {"type": "integer"}, "shutdownAfterJobFinishes": {"type": "boolean"},
            "ttlSecondsAfterFinished": {"type": "integer"},
            "rayClusterSpec": {"type": "object", "additionalProperties": False,
                               "required": ["headGroupSpec"], "properties": {
                "rayVersion": {"type": "string"},
                "enableInTreeAutoscaling": {"type": "boolean"},
                "authOptions": {"type": "object", "additionalProperties": False,
                                "properties": {"mode": {"enum": ["disabled", "token"]}}},
                "headGroupSpec": {"type": "object", "additionalProperties": False,
                                  "required": ["template"], "properties": {
                    "rayStartParams": STRING_MAP, "template": POD_TEMPLATE}},
                "workerGroupSpecs": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["groupName", "minReplicas", "maxReplicas", "template"],
                    "properties": {
                        "groupName": {"type": "string"}, "replicas": {"type": "integer"},
                        "minReplicas": {"type": "integer"}, "maxReplicas": {"type": "integer"},
                        "rayStartParams": STRING_MAP, "template": POD_TEMPLATE}}},
            }},
        }},
    },
}


def walkthrough_job_command() -> str:
    """The driver command of docs/cluster.md's walk-through (after `ray job submit ... --`)."""
    from test_cluster_jobs import walkthrough

    job = next(c for c in walkthrough() if c[:3] == ["ray", "job", "submit"])
    return " ".join(job[job.index("--") + 1:])


def test_the_rayjob_is_kuberays_shape_and_runs_the_documented_command():
    manifest = yaml.safe_load(RAYJOB.read_text())
    jsonschema.validate(manifest, RAYJOB_SCHEMA)
    spec = manifest["spec"]
    assert spec["entrypoint"] == walkthrough_job_command()
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"working_dir": "/home/ray/adstudy"}
    assert "WORKDIR /home/ray/adstudy" in DOCKERFILE.read_text()  # the image's checkout
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__ and cluster["authOptions"]["mode"] == "token"
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"  # like cluster.yaml: GPU trials wait
    (gpu,) = cluster["workerGroupSpecs"]
    assert gpu["minReplicas"] == 0 < gpu["maxReplicas"] and cluster["enableInTreeAutoscaling"]
    limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize("group", ["head", "worker"])
def test_the_rayjobs_pod_templates_are_valid_kubernetes_pods(group):
    cluster = yaml.safe_load(RAYJOB.read_text())["spec"]["rayClusterSpec"]
    template = (cluster["headGroupSpec"] if group == "head" else cluster["workerGroupSpecs"][0])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": group},
           "spec": template["template"]["spec"]}
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    pod["spec"]["containers"][0]["imagee"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagee"):
        kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)


def test_the_address_falls_back_to_ray_address_as_a_ray_job_sets_it(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address(None) is None
    assert cluster_address("auto") == "auto"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert cluster_address(None) == "10.0.0.1:6379"
    assert cluster_address("auto") == "auto"


def test_a_ray_client_address_needs_the_ray_client(tmp_path):
    try:
        import grpc  # noqa: F401  (ray[default] brings it; ray[tune] alone does not)
    except ImportError:
        with pytest.raises(SpecError, match=r"'ray://head:10001' needs the Ray Client"):
            submit(parse_spec("study: s\n"), str(tmp_path), "ray://head:10001",
                   out=io.StringIO())
        assert not (tmp_path / "s").exists()  # refused before any work
    else:
        assert cluster_address("ray://head:10001") == "ray://head:10001"

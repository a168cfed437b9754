"""cluster.yaml is valid for Ray's cluster launcher and exposes nothing but SSH."""

import json
import os
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")
ray_autoscaler = pytest.importorskip("ray.autoscaler")

CLUSTER = Path(__file__).resolve().parents[1] / "cluster.yaml"


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load(CLUSTER.read_text())


def test_valid_against_rays_schema(config):
    from ray.autoscaler._private.util import prepare_config, validate_config

    schema_path = os.path.join(os.path.dirname(ray_autoscaler.__file__), "ray-schema.json")
    jsonschema.validate(config, json.loads(Path(schema_path).read_text()))
    validate_config(prepare_config(config))


def test_cpu_head_and_gpu_workers(config):
    assert config["provider"]["type"] == "aws"
    head = config["available_node_types"][config["head_node_type"]]
    assert not head["node_config"]["InstanceType"].startswith(("g", "p"))
    workers = [node for name, node in config["available_node_types"].items() if name != config["head_node_type"]]
    gpu_workers = [node for node in workers if re.match(r"(g\d|p\d)", node["node_config"]["InstanceType"])]
    assert gpu_workers and all(0 <= node["min_workers"] <= node["max_workers"] for node in gpu_workers)


def test_the_project_is_synced_and_installed(config):
    assert "." in config["file_mounts"].values()
    remote = next(target for target, source in config["file_mounts"].items() if source == ".")
    assert any("pip install" in command and remote in command for command in config["setup_commands"])


def test_dashboard_and_job_api_stay_on_localhost(config):
    head_start = " ".join(config["head_start_ray_commands"])
    assert re.search(r"--dashboard-host[= ](127\.0\.0\.1|localhost)\b", head_start)
    every_command = json.dumps(config)
    assert "0.0.0.0" not in every_command


def test_inbound_traffic_is_ssh_only(config):
    group = config["provider"]["security_group"]
    for rule in group.get("IpPermissions", []):
        if rule.get("IpRanges") or rule.get("Ipv6Ranges"):
            assert (rule["FromPort"], rule["ToPort"]) == (22, 22), rule


def test_every_node_starts_ray_with_token_authentication(config):
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    for command in (command for command in starts if "ray start" in command):
        assert re.search(r"RAY_AUTH_MODE=token ray start", command), command
    assert config["file_mounts"].get("~/.ray/auth_token") == "~/.ray/auth_token", "one token, copied to every node"
    assert any("RAY_AUTH_MODE=token" in command for command in config["setup_commands"]), "the driver's shell too"

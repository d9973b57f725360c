"""Configuration sources and the Stack 1 -> Stack 2 hand-off parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vllm_doks import ValidationError
from vllm_doks.config import ArchitectureConfig, InfraOutputs, load_config, parse_infra_outputs

CDKTF_OUTPUTS = {
    "vllm-infra": {
        "vpc_id": "v-1",
        "nfs_host": "10.200.0.7",
        "nfs_mount_path": "/123456/abc",
        "nfs_size_gb": 1000,
        "gpu_node_pool_name": "my-vllm-gpu-h100",
    }
}
TERRAFORM_OUTPUTS = {
    "nfs_host": {"sensitive": False, "type": "string", "value": "10.200.0.9"},
    "nfs_mount_path": {"sensitive": False, "type": "string", "value": "/999/xyz"},
    "nfs_size_gb": {"sensitive": False, "type": "number", "value": 500},
    "gpu_node_pool_name": {"sensitive": False, "type": "string", "value": "p-gpu-h100"},
}


def test_defaults_are_the_seeds() -> None:
    c = load_config()
    assert c == ArchitectureConfig()
    assert c.model_id == "Qwen/Qwen2.5-0.5B-Instruct"
    assert (c.replicas, c.quantization) == (1, "")
    assert (c.name_prefix, c.region, c.vpc_cidr) == ("my-vllm", "nyc2", "10.200.0.0/22")
    assert (c.doks_cluster_subnet, c.doks_service_subnet) == ("172.16.0.0/20", "192.168.0.0/22")
    assert (c.nfs_size_gb, c.doks_control_plane_ha) == (1000, False)
    assert (c.management_node_pool_min_nodes, c.management_node_pool_max_nodes) == (2, 3)


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "vllm.yaml"
    cfg.write_text("replicas: 2\nquantization: fp8\nregion: atl1\nnfs_size_gb: 200\n")
    env = {"VLLM_DOKS_REPLICAS": "3", "VLLM_DOKS_REGION": "nyc2", "UNRELATED": "x"}
    c = load_config(cfg, env=env, overrides={"replicas": "4"})
    assert c.replicas == 4  # flag beats env beats file
    assert c.region == "nyc2"  # env beats file
    assert c.quantization == "fp8" and c.nfs_size_gb == 200  # file beats default


def test_bool_and_int_coercion() -> None:
    c = load_config(
        env={"VLLM_DOKS_DOKS_CONTROL_PLANE_HA": "true"}, overrides={"gpu_node_count": "3"}
    )
    assert c.doks_control_plane_ha is True and c.gpu_node_count == 3


def test_bad_sources_reported_together(tmp_path: Path) -> None:
    cfg = tmp_path / "vllm.yaml"
    cfg.write_text("replicas: many\nmodle_id: typo/name\n")
    with pytest.raises(ValidationError) as err:
        load_config(cfg, env={"VLLM_DOKS_DOKS_CONTROL_PLANE_HA": "perhaps"})
    text = str(err.value)
    assert "replicas: got 'many'; must be a whole number" in text
    assert "modle_id" in text and "is not a known input" in text
    assert "doks_control_plane_ha: got 'perhaps'; must be true or false (from environment)" in text
    assert len(err.value.problems) == 3


def test_config_file_must_be_a_mapping(tmp_path: Path) -> None:
    cfg = tmp_path / "vllm.yaml"
    cfg.write_text("- a\n- b\n")
    with pytest.raises(ValidationError, match="must be a YAML mapping"):
        load_config(cfg)


@pytest.mark.parametrize("payload", [CDKTF_OUTPUTS, TERRAFORM_OUTPUTS], ids=["cdktf", "terraform"])
def test_both_output_shapes(payload: dict[str, object]) -> None:
    out = parse_infra_outputs(json.dumps(payload))
    assert out.examples == ()
    if payload is CDKTF_OUTPUTS:
        assert out == InfraOutputs("10.200.0.7", "/123456/abc", 1000, "my-vllm-gpu-h100")
    else:
        assert out == InfraOutputs("10.200.0.9", "/999/xyz", 500, "p-gpu-h100")


def test_missing_outputs_are_named() -> None:
    with pytest.raises(ValidationError) as err:
        parse_infra_outputs(json.dumps({"vllm-infra": {"nfs_host": "10.0.0.1"}}), "out.json")
    text = str(err.value)
    for key in ("nfs_mount_path", "nfs_size_gb", "gpu_node_pool_name"):
        assert f"{key}: got None; missing from out.json" in text


def test_not_json() -> None:
    with pytest.raises(ValidationError, match="must be JSON"):
        parse_infra_outputs("nfs_host = 10.0.0.1")


def test_example_outputs_are_marked() -> None:
    out = InfraOutputs.examples_for(ArchitectureConfig(name_prefix="abc"))
    assert out.examples == ("nfs_host", "nfs_mount_path")
    assert out.nfs_host.endswith(".invalid")
    assert out.gpu_node_pool_name == "abc-gpu-h100"

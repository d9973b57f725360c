"""Stack 1 (cloud layer): every seed input and output, asserted on the synthesized JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cdktf import App
from support import SEED_TFVARS

from vllm_doks import ValidationError
from vllm_doks.cloud import (
    DIGITALOCEAN_PROVIDER_CONSTRAINT,
    OUTPUT_DESCRIPTIONS,
    InfraProps,
    ModelShare,
    ModelShareProps,
    SpacesStateBackend,
    VllmInfraStack,
)


def synth(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    props = InfraProps(**{**SEED_TFVARS, **overrides})
    app = App(outdir=str(tmp_path / "out"))
    VllmInfraStack(app, "vllm-infra", props)
    app.synth()
    return json.loads((tmp_path / "out" / "stacks" / "vllm-infra" / "cdk.tf.json").read_text())


@pytest.fixture(scope="module")
def default_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return synth(tmp_path_factory.mktemp("infra"))


def resource(doc: dict[str, Any], rtype: str, name: str) -> dict[str, Any]:
    return doc["resource"][rtype][name]


def test_vpc_uses_prefix_region_and_cidr(default_json: dict[str, Any]) -> None:
    vpc = resource(default_json, "digitalocean_vpc", "vllm")
    assert (vpc["name"], vpc["region"], vpc["ip_range"]) == ("my-vllm", "nyc2", "10.200.0.0/22")


def test_cluster_matches_seed(default_json: dict[str, Any]) -> None:
    cluster = resource(default_json, "digitalocean_kubernetes_cluster", "vllm")
    versions_id = next(iter(default_json["data"]["digitalocean_kubernetes_versions"]))
    assert (
        cluster["version"]
        == f"${{data.digitalocean_kubernetes_versions.{versions_id}.latest_version}}"
    )
    assert cluster["vpc_uuid"] == "${digitalocean_vpc.vllm.id}"
    assert cluster["cluster_subnet"] == "172.16.0.0/20"
    assert cluster["service_subnet"] == "192.168.0.0/22"
    assert cluster["destroy_all_associated_resources"] is True
    assert cluster["ha"] is False
    assert cluster["surge_upgrade"] is False
    assert cluster["tags"] == ["vllm-nfs", "my-vllm"]
    assert cluster["region"] == "nyc2" and cluster["name"] == "my-vllm"


def test_management_pool_autoscales_on_cheapest_available_2vcpu_4gb_size(
    default_json: dict[str, Any],
) -> None:
    sizes_id, sizes = next(iter(default_json["data"]["digitalocean_sizes"].items()))
    assert sizes["filter"] == [
        {"key": "vcpus", "values": ["2"]},
        {"key": "memory", "values": ["4096"]},
        {"key": "regions", "values": ["nyc2"]},
        # Retired sizes stay in the list with available=false; a pool cannot use them.
        {"key": "available", "values": ["true"]},
    ]
    assert sizes["sort"] == [{"key": "price_monthly", "direction": "asc"}]
    slug = f"${{data.digitalocean_sizes.{sizes_id}.sizes[0].slug}}"
    pool = resource(default_json, "digitalocean_kubernetes_cluster", "vllm")["node_pool"]
    assert pool["size"] == slug
    assert pool["name"] == f"my-vllm-mgmt-{slug}"
    assert pool["auto_scale"] is True
    assert (pool["min_nodes"], pool["max_nodes"]) == (2, 3)
    assert pool["tags"] == ["vllm-nfs", "my-vllm"]


def test_catalogue_choices_are_kept_after_creation(default_json: dict[str, Any]) -> None:
    # Newest version and cheapest size are chosen at creation; later catalogue changes
    # (a DOKS release, a cheaper size, a price change) must not upgrade or replace the
    # cluster. The deploy rehearsal (test_rehearsal.py) shows the plans this prevents.
    cluster = resource(default_json, "digitalocean_kubernetes_cluster", "vllm")
    assert cluster["lifecycle"] == {
        "ignore_changes": ["version", "node_pool[0].size", "node_pool[0].name"]
    }


def test_pinned_version_and_size_are_used_verbatim_and_not_ignored(tmp_path: Path) -> None:
    doc = synth(tmp_path, kubernetes_version="1.33.5-do.0", management_node_size="s-2vcpu-4gb")
    cluster = resource(doc, "digitalocean_kubernetes_cluster", "vllm")
    assert cluster["version"] == "1.33.5-do.0"
    assert cluster["node_pool"]["size"] == "s-2vcpu-4gb"
    assert cluster["node_pool"]["name"] == "my-vllm-mgmt-s-2vcpu-4gb"
    # A change of a pinned input is an upgrade (or replacement) the plan shows.
    assert "lifecycle" not in cluster
    assert "digitalocean_kubernetes_versions" not in doc.get("data", {})
    assert "digitalocean_sizes" not in doc.get("data", {})


def test_pinning_one_keeps_the_other_chosen_at_creation(tmp_path: Path) -> None:
    doc = synth(tmp_path, kubernetes_version="1.34.1-do.0")
    cluster = resource(doc, "digitalocean_kubernetes_cluster", "vllm")
    assert cluster["lifecycle"] == {"ignore_changes": ["node_pool[0].size", "node_pool[0].name"]}
    assert "digitalocean_sizes" in doc["data"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("kubernetes_version", "latest", "full DOKS version slug"),
        ("kubernetes_version", "1.34", "full DOKS version slug"),
        ("management_node_size", "S-2VCPU", "Droplet size slug"),
        ("management_node_size", "s-2vcpu-4gb-" + "x" * 40, "DNS-1123 label"),
    ],
)
def test_bad_pins_are_refused(field: str, value: str, expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        InfraProps(**{**SEED_TFVARS, field: value}).problems().raise_if_any()
    assert field in str(err.value) and repr(value) in str(err.value)
    assert expected in str(err.value)


def test_gpu_pool(default_json: dict[str, Any]) -> None:
    gpu = resource(default_json, "digitalocean_kubernetes_node_pool", "gpu")
    assert gpu["name"] == "my-vllm-gpu-h100"
    assert gpu["size"] == "gpu-h100x1-80gb"
    assert gpu["node_count"] == 2
    assert gpu["cluster_id"] == "${digitalocean_kubernetes_cluster.vllm.id}"
    assert gpu["tags"] == ["vllm-nfs", "my-vllm"]


def test_nfs_share(default_json: dict[str, Any]) -> None:
    nfs = resource(default_json, "digitalocean_nfs", "models")
    assert nfs == {
        **{"//": nfs["//"]},
        "name": "my-vllm-models",
        "region": "nyc2",
        "size": 1000,
        "vpc_id": "${digitalocean_vpc.vllm.id}",
    }


def test_the_seeds_eleven_outputs_and_the_pool_size_with_descriptions(
    default_json: dict[str, Any],
) -> None:
    outputs = default_json["output"]
    assert set(outputs) == set(OUTPUT_DESCRIPTIONS) and len(outputs) == 12
    expected_values = {
        "vpc_id": "${digitalocean_vpc.vllm.id}",
        "cluster_id": "${digitalocean_kubernetes_cluster.vllm.id}",
        "cluster_name": "${digitalocean_kubernetes_cluster.vllm.name}",
        "cluster_endpoint": "${digitalocean_kubernetes_cluster.vllm.endpoint}",
        "nfs_share_id": "${digitalocean_nfs.models.id}",
        "nfs_share_name": "${digitalocean_nfs.models.name}",
        "nfs_host": "${digitalocean_nfs.models.host}",
        "nfs_mount_path": "${digitalocean_nfs.models.mount_path}",
        "nfs_size_gb": "${digitalocean_nfs.models.size}",
        "gpu_node_pool_id": "${digitalocean_kubernetes_node_pool.gpu.id}",
        "gpu_node_pool_name": "${digitalocean_kubernetes_node_pool.gpu.name}",
        "gpu_node_pool_size": "${digitalocean_kubernetes_node_pool.gpu.size}",
    }
    for name, value in expected_values.items():
        assert outputs[name]["value"] == value, name
        assert outputs[name]["description"] == OUTPUT_DESCRIPTIONS[name]


def test_provider_requirement_admits_nfs_host_and_mount_path(default_json: dict[str, Any]) -> None:
    req = default_json["terraform"]["required_providers"]["digitalocean"]
    assert req["source"] == "digitalocean/digitalocean"
    # 2.71.0 (what the prebuilt bindings pin) lacks host/mount_path; 2.72.0 added them.
    assert req["version"] == DIGITALOCEAN_PROVIDER_CONSTRAINT == ">= 2.72.0, < 3.0.0"


def test_model_share_alone_raises_provider_requirement(tmp_path: Path) -> None:
    from cdktf import TerraformStack
    from cdktf_cdktf_provider_digitalocean.provider import DigitaloceanProvider

    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "mine")
    DigitaloceanProvider(stack, "do")
    ModelShare(
        stack, "share", ModelShareProps(name="m-models", region="atl1", vpc_id="v", size_gb=50)
    )
    app.synth()
    doc = json.loads((tmp_path / "stacks" / "mine" / "cdk.tf.json").read_text())
    assert doc["terraform"]["required_providers"]["digitalocean"]["version"] == ">= 2.72.0, < 3.0.0"


@pytest.mark.parametrize(
    ("field", "value", "key_path", "expected"),
    [
        (
            "gpu_node_count",
            0,
            ("resource", "digitalocean_kubernetes_node_pool", "gpu", "node_count"),
            0,
        ),
        (
            "doks_control_plane_ha",
            True,
            ("resource", "digitalocean_kubernetes_cluster", "vllm", "ha"),
            True,
        ),
        (
            "doks_surge_upgrade",
            True,
            ("resource", "digitalocean_kubernetes_cluster", "vllm", "surge_upgrade"),
            True,
        ),
        (
            "management_node_pool_min_nodes",
            1,
            ("resource", "digitalocean_kubernetes_cluster", "vllm", "node_pool", "min_nodes"),
            1,
        ),
        (
            "management_node_pool_max_nodes",
            7,
            ("resource", "digitalocean_kubernetes_cluster", "vllm", "node_pool", "max_nodes"),
            7,
        ),
        ("region", "atl1", ("resource", "digitalocean_nfs", "models", "region"), "atl1"),
        ("nfs_size_gb", 50, ("resource", "digitalocean_nfs", "models", "size"), 50),
        (
            "name_prefix",
            "prod",
            ("resource", "digitalocean_kubernetes_node_pool", "gpu", "name"),
            "prod-gpu-h100",
        ),
        (
            "vpc_cidr",
            "10.10.0.0/16",
            ("resource", "digitalocean_vpc", "vllm", "ip_range"),
            "10.10.0.0/16",
        ),
        (
            "doks_cluster_subnet",
            "172.20.0.0/16",
            ("resource", "digitalocean_kubernetes_cluster", "vllm", "cluster_subnet"),
            "172.20.0.0/16",
        ),
        (
            "doks_service_subnet",
            "192.168.8.0/22",
            ("resource", "digitalocean_kubernetes_cluster", "vllm", "service_subnet"),
            "192.168.8.0/22",
        ),
    ],
)
def test_each_input_reaches_its_resource(
    tmp_path: Path, field: str, value: Any, key_path: tuple[str, ...], expected: Any
) -> None:
    node: Any = synth(tmp_path, **{field: value})
    for key in key_path:
        node = node[key]
    assert node == expected


def test_seed_defaults_for_optional_inputs() -> None:
    props = InfraProps(**{k: v for k, v in SEED_TFVARS.items() if k != "gpu_node_count"})
    assert props.gpu_node_count == 0
    assert props.doks_control_plane_ha is False
    assert props.management_node_pool_min_nodes == 2
    assert props.management_node_pool_max_nodes == 3


def test_default_backend_is_portable_local_state(default_json: dict[str, Any]) -> None:
    assert default_json["terraform"]["backend"] == {
        "local": {"path": "../../../terraform.vllm-infra.tfstate"}
    }


def test_spaces_backend(tmp_path: Path) -> None:
    doc = synth(tmp_path, state_backend=SpacesStateBackend(bucket="my-state", spaces_region="ams3"))
    s3 = doc["terraform"]["backend"]["s3"]
    assert s3["bucket"] == "my-state"
    assert s3["key"] == "vllm-doks/infra.tfstate"
    assert s3["endpoints"] == {"s3": "https://ams3.digitaloceanspaces.com"}
    assert s3["skip_credentials_validation"] is True
    assert "access_key" not in s3 and "secret_key" not in s3


def test_two_synths_byte_identical_and_no_machine_paths(tmp_path: Path) -> None:
    outputs = []
    for run in ("a", "b"):
        app = App(outdir=str(tmp_path / run))
        VllmInfraStack(app, "vllm-infra", InfraProps(**SEED_TFVARS))
        app.synth()
        files = sorted(p for p in (tmp_path / run).rglob("*") if p.is_file())
        outputs.append({str(p.relative_to(tmp_path / run)): p.read_bytes() for p in files})
    assert outputs[0] == outputs[1]
    home = str(Path.home())
    for content in outputs[0].values():
        assert str(tmp_path).encode() not in content
        assert home.encode() not in content
        assert str(Path.cwd()).encode() not in content


def test_unsupported_region_is_refused_with_escape_hatch(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        InfraProps(**{**SEED_TFVARS, "region": "fra1"}).problems().raise_if_any()
    assert (
        "region" in str(err.value) and "'fra1'" in str(err.value) and "atl1, nyc2" in str(err.value)
    )
    doc = synth(tmp_path, region="fra1", allow_unlisted_region=True)
    assert doc["resource"]["digitalocean_vpc"]["vllm"]["region"] == "fra1"


def test_stack_error_names_construct_path(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    with pytest.raises(ValidationError) as err:
        VllmInfraStack(app, "vllm-infra", InfraProps(**{**SEED_TFVARS, "nfs_size_gb": 10}))
    assert "vllm-infra" in str(err.value)
    assert "nfs_size_gb: got 10" in str(err.value)
    assert not list(tmp_path.rglob("cdk.tf.json"))

"""The simulated DigitalOcean API answers what the provider's client (godo) expects, and refuses
what the real API refuses. Fast: plain HTTP against the in-process server."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from vllm_doks.rehearsal.fake_digitalocean import FakeDigitalOcean


@pytest.fixture
def fake() -> Iterator[FakeDigitalOcean]:
    with FakeDigitalOcean(ready_after=0.3, max_per_page=4, lifetime=60) as api:
        yield api


def call(
    fake: FakeDigitalOcean, method: str, path: str, body: Any = None, token: bool = True
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(fake.url + path, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer any-token")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def vpc(fake: FakeDigitalOcean, name: str = "v", ip_range: str = "10.200.0.0/22") -> str:
    status, body = call(
        fake, "POST", "/v2/vpcs", {"name": name, "region": "nyc2", "ip_range": ip_range}
    )
    assert status == 201, body
    return str(body["vpc"]["id"])


def pool(size: str = "s-2vcpu-4gb", **extra: Any) -> dict[str, Any]:
    return {
        "name": "mgmt",
        "size": size,
        "auto_scale": True,
        "min_nodes": 2,
        "max_nodes": 3,
        **extra,
    }


def cluster_body(vpc_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "c",
        "region": "nyc2",
        "version": "1.34.1-do.0",
        "vpc_uuid": vpc_id,
        "cluster_subnet": "172.16.0.0/20",
        "service_subnet": "192.168.0.0/22",
        "node_pools": [pool()],
        **extra,
    }


def test_sizes_are_paged_the_way_godo_reads_pages(fake: FakeDigitalOcean) -> None:
    # godo's Links.CurrentPage() derives the page from `prev`; IsLastPage() is `next == ""`.
    slugs: list[str] = []
    page = 1
    while True:
        status, body = call(fake, "GET", f"/v2/sizes?page={page}&per_page=200")
        assert status == 200
        assert len(body["sizes"]) <= 4
        slugs += [s["slug"] for s in body["sizes"]]
        pages = body["links"]["pages"]
        if page > 1:
            assert parse_qs(urlsplit(pages["prev"]).query)["page"] == [str(page - 1)]
        if "next" not in pages:
            break
        page += 1
    assert page > 1 and len(slugs) == body["meta"]["total"] == len(set(slugs))
    assert {"s-2vcpu-4gb", "gpu-h100x1-80gb", "gpu-mi300x1-192gb"} <= set(slugs)


def test_unimplemented_paths_answer_digitaloceans_404_shape(fake: FakeDigitalOcean) -> None:
    status, body = call(fake, "GET", "/v2/droplets")
    assert status == 404 and body["id"] == "not_found" and body["message"]


def test_requests_without_a_token_are_refused(fake: FakeDigitalOcean) -> None:
    assert call(fake, "GET", "/v2/sizes", token=False)[0] == 401


def test_cluster_provisions_then_runs_with_nodes(fake: FakeDigitalOcean) -> None:
    status, body = call(fake, "POST", "/v2/kubernetes/clusters", cluster_body(vpc(fake)))
    assert status == 201, body
    cluster = body["kubernetes_cluster"]
    assert cluster["status"]["state"] == "provisioning"
    assert [n["status"]["state"] for n in cluster["node_pools"][0]["nodes"]] == ["provisioning"] * 2
    time.sleep(0.4)
    _, body = call(fake, "GET", f"/v2/kubernetes/clusters/{cluster['id']}")
    running = body["kubernetes_cluster"]
    assert running["status"]["state"] == "running"
    assert all(n["status"]["state"] == "running" for n in running["node_pools"][0]["nodes"])
    assert all(n["name"].startswith("mgmt-") for n in running["node_pools"][0]["nodes"])


def test_nfs_host_and_mount_path_appear_once_active(fake: FakeDigitalOcean) -> None:
    vpc_id = vpc(fake)
    status, body = call(
        fake,
        "POST",
        "/v2/nfs",
        {"name": "m", "size_gib": 50, "region": "nyc2", "vpc_ids": [vpc_id]},
    )
    assert status == 201
    share = body["share"]
    assert (share["status"], share["host"], share["mount_path"]) == ("CREATING", "", "")
    time.sleep(0.4)
    _, body = call(fake, "GET", f"/v2/nfs/{share['id']}?region=nyc2")
    assert body["share"]["status"] == "ACTIVE"
    assert body["share"]["host"].startswith("10.200.0.") and body["share"]["mount_path"]


@pytest.mark.parametrize(
    ("path", "make_body", "message"),
    [
        ("/v2/vpcs", lambda v: {"name": "x", "region": "mars1"}, "not a valid region"),
        (
            "/v2/vpcs",
            lambda v: {"name": "x", "region": "nyc2", "ip_range": "10.200.2.0/24"},
            "overlaps",
        ),
        (
            "/v2/vpcs",
            lambda v: {"name": "x", "region": "nyc2", "ip_range": "8.8.0.0/16"},
            "private",
        ),
        (
            "/v2/kubernetes/clusters",
            lambda v: cluster_body(v, node_pools=[pool("s-3vcpu-5gb")]),
            "does not exist",
        ),
        (
            "/v2/kubernetes/clusters",
            lambda v: cluster_body(v, node_pools=[pool("s-2vcpu-4gb-legacy")]),
            "not available",
        ),
        (
            "/v2/kubernetes/clusters",
            lambda v: cluster_body(v, version="1.20.0-do.0"),
            "not offered",
        ),
        (
            "/v2/kubernetes/clusters",
            lambda v: cluster_body(v, cluster_subnet="10.200.0.0/16"),
            "overlaps",
        ),
        (
            "/v2/nfs",
            lambda v: {"name": "m", "size_gib": 50, "region": "fra1", "vpc_ids": [v]},
            "not offered",
        ),
    ],
)
def test_what_the_real_api_refuses_is_refused(
    fake: FakeDigitalOcean, path: str, make_body: Any, message: str
) -> None:
    status, body = call(fake, "POST", path, make_body(vpc(fake)))
    assert status == 422, body
    assert body["id"] == "unprocessable_entity" and message in body["message"]


def test_vpc_with_members_cannot_be_deleted(fake: FakeDigitalOcean) -> None:
    vpc_id = vpc(fake)
    _, body = call(fake, "POST", "/v2/kubernetes/clusters", cluster_body(vpc_id))
    # The provider retries 409 until the members are gone (resource_vpc.go).
    assert call(fake, "DELETE", f"/v2/vpcs/{vpc_id}")[0] == 409
    cluster_id = body["kubernetes_cluster"]["id"]
    path = f"/v2/kubernetes/clusters/{cluster_id}/destroy_with_associated_resources/dangerous"
    assert call(fake, "DELETE", path)[0] == 204
    assert call(fake, "DELETE", f"/v2/vpcs/{vpc_id}")[0] == 204
    assert fake.resource_counts() == dict.fromkeys(fake.resource_counts(), 0)


def test_catalogue_changes_and_restore(fake: FakeDigitalOcean) -> None:
    saved = fake.catalogue()
    fake.add_kubernetes_version("1.35.0-do.0")
    fake.set_price("s-2vcpu-4gb", 1.0)
    _, body = call(fake, "GET", "/v2/kubernetes/options")
    assert body["options"]["versions"][0]["slug"] == "1.35.0-do.0"
    assert (fake.size("s-2vcpu-4gb") or {})["price_monthly"] == 1.0
    fake.restore_catalogue(saved)
    _, body = call(fake, "GET", "/v2/kubernetes/options")
    assert body["options"]["versions"][0]["slug"] == "1.34.1-do.0"


def test_server_stops_itself_after_its_lifetime() -> None:
    api = FakeDigitalOcean(lifetime=0.2)
    url = api.start()
    time.sleep(0.6)
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/v2/sizes", timeout=2)

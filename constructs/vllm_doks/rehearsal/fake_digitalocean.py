"""A simulated DigitalOcean API on 127.0.0.1, for rehearsing ``cdktf deploy`` without an account.

The real Terraform provider (``digitalocean/digitalocean`` 2.99.1) talks to whatever
``DIGITALOCEAN_API_URL`` names (``digitalocean/provider.go``: ``api_endpoint`` defaults from
that variable), with any ``DIGITALOCEAN_TOKEN``. This server implements what the provider calls
for this product's stacks, with the paths and bodies of its vendored client
(``vendor/github.com/digitalocean/godo`` at tag v2.99.1):

* ``GET /v2/sizes`` (``sizes.go``; paged: ``links.pages.next``/``prev`` carry ``page=N``, which
  ``links.go`` reads back), ``GET /v2/kubernetes/options`` (``kubernetes.go``:
  ``{"options": {"versions", "regions", "sizes"}}``, newest version first: the
  ``digitalocean_kubernetes_versions`` data source takes the first as ``latest_version``).
* ``/v2/vpcs`` (``vpcs.go``), ``/v2/kubernetes/clusters`` with ``node_pools``, ``credentials``,
  ``upgrade`` and ``destroy_with_associated_resources[/dangerous]`` (``kubernetes.go``), and
  Managed NFS ``/v2/nfs`` (``nfs.go``: ``{"share": {..., "status": "ACTIVE", "host",
  "mount_path"}}``).

Resources start ``provisioning`` (NFS: ``CREATING``) and turn ``running``/``ACTIVE`` after
``ready_after`` seconds, so the provider's wait loops (10 s tickers for clusters and pools, 5 s
sleeps for NFS) really wait. Anything not implemented answers DigitalOcean's error shape
``{"id": "not_found", "message": ...}`` with 404; a request the real API would refuse answers
422 ``unprocessable_entity`` (unknown region or size, an unavailable size, a Kubernetes
version that is not offered, overlapping IP ranges, duplicate names), and deleting a VPC that
still has members answers 409, which the provider retries.

The catalogue (sizes, prices, versions, regions) is illustrative: the slug shapes follow
DigitalOcean's, the GPU sizes come from :mod:`vllm_doks.gpu_catalog`, and prices are round
numbers, not quotes. Tests change it (:meth:`FakeDigitalOcean.add_size`,
:meth:`FakeDigitalOcean.set_price`, :meth:`FakeDigitalOcean.add_kubernetes_version`) to
rehearse what DigitalOcean changing its catalogue does to the next plan.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from vllm_doks import contracts
from vllm_doks.gpu_catalog import GPU_SIZES
from vllm_doks.rehearsal.service import LocalService

#: Regions DOKS offers in this simulation (``/v2/kubernetes/options`` ``regions``).
KUBERNETES_REGIONS: tuple[str, ...] = (
    "ams3",
    "atl1",
    "blr1",
    "fra1",
    "lon1",
    "nyc1",
    "nyc2",
    "nyc3",
    "sfo3",
    "sgp1",
    "syd1",
    "tor1",
)
#: Regions with Managed NFS and GPU Droplets (the seed: "currently NYC2 or ATL1").
NFS_REGIONS: tuple[str, ...] = ("atl1", "nyc2")
GPU_REGIONS: tuple[str, ...] = NFS_REGIONS

#: DOKS releases offered, newest first (the API's order).
KUBERNETES_VERSIONS: tuple[str, ...] = ("1.34.1-do.0", "1.33.5-do.0", "1.32.9-do.1")

#: The real API's largest page (``per_page`` above it is capped).
REAL_MAX_PER_PAGE = 200


def make_size(
    slug: str,
    vcpus: int,
    memory_mb: int,
    price_monthly: float,
    *,
    regions: tuple[str, ...] = KUBERNETES_REGIONS,
    available: bool = True,
    gpu: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    size: dict[str, Any] = {
        "slug": slug,
        "memory": memory_mb,
        "vcpus": vcpus,
        "disk": max(25, memory_mb // 1024 * 20),
        "transfer": 4.0,
        "price_monthly": price_monthly,
        "price_hourly": round(price_monthly / 672, 5),
        "regions": list(regions),
        "available": available,
        "description": "Basic" if not gpu else "GPU",
    }
    if gpu:
        size["gpu_info"] = dict(gpu)
    return size


def default_sizes() -> list[dict[str, Any]]:
    """The simulated Droplet size catalogue (illustrative prices)."""
    sizes = [
        make_size("s-1vcpu-1gb", 1, 1024, 6.0),
        make_size("s-1vcpu-2gb", 1, 2048, 12.0),
        make_size("s-2vcpu-2gb", 2, 2048, 18.0),
        make_size("s-2vcpu-4gb", 2, 4096, 24.0),
        make_size("s-2vcpu-4gb-amd", 2, 4096, 28.0),
        make_size("s-2vcpu-4gb-intel", 2, 4096, 28.0),
        # Retired from sale but still listed: the real API keeps such sizes with available=false.
        make_size("s-2vcpu-4gb-legacy", 2, 4096, 20.0, available=False),
        make_size("s-4vcpu-8gb", 4, 8192, 48.0),
        make_size("g-2vcpu-8gb", 2, 8192, 63.0),
    ]
    for gpu in GPU_SIZES.values():
        sizes.append(
            make_size(
                gpu.slug,
                20 * gpu.gpu_count,
                240 * 1024 * gpu.gpu_count,
                round(2500.0 * gpu.gpu_count * gpu.gpu_memory_gb / 80, 2),
                regions=GPU_REGIONS,
                gpu={
                    "count": gpu.gpu_count,
                    "model": gpu.gpu_model,
                    "vram": {"amount": int(gpu.gpu_memory_gb * gpu.gpu_count), "unit": "gib"},
                },
            )
        )
    return sizes


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An error answered in DigitalOcean's shape."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message


def _unprocessable(message: str) -> ApiError:
    return ApiError(422, "unprocessable_entity", message)


def _not_found(what: str) -> ApiError:
    return ApiError(
        404, "not_found", f"The resource you were accessing could not be found. ({what})"
    )


@dataclass
class _Timed:
    """Something that becomes ready ``ready_after`` seconds after it was created."""

    created: float = field(default_factory=time.monotonic)

    def ready(self, ready_after: float) -> bool:
        return time.monotonic() - self.created >= ready_after


@dataclass
class Event:
    """One state-changing request the simulated API served (for reports and assertions)."""

    method: str
    path: str
    status: int


class FakeDigitalOcean(LocalService):
    """In-memory DigitalOcean API for the provider's calls; see the module docstring.

    ``ready_after``: seconds from creation until clusters, node pools, nodes and NFS shares are
    running. ``max_per_page``: the largest page served (the real API's is 200; a smaller one
    makes the provider page through the sizes). ``lifetime``: the server shuts itself down
    after this many seconds even if :meth:`stop` is never called.
    """

    def __init__(
        self,
        *,
        ready_after: float = 1.0,
        max_per_page: int = REAL_MAX_PER_PAGE,
        lifetime: float = 1800.0,
    ) -> None:
        self.ready_after = ready_after
        self.max_per_page = max_per_page
        self.lifetime = lifetime
        self.lock = threading.RLock()
        self.sizes: list[dict[str, Any]] = default_sizes()
        self.versions: list[str] = list(KUBERNETES_VERSIONS)
        self.vpcs: dict[str, dict[str, Any]] = {}
        self.clusters: dict[str, dict[str, Any]] = {}
        self.shares: dict[str, dict[str, Any]] = {}
        self._timers: dict[str, _Timed] = {}
        self.events: list[Event] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._deadline: threading.Timer | None = None
        self._ip_counter = 10

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulated API is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        """Serve on a free port of 127.0.0.1; returns the base URL."""
        api = self

        class Handler(_Handler):
            fake = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # serve_forever checks for shutdown() every poll_interval (0.5 s by default): each
        # stop() would wait up to that long.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-digitalocean",
            daemon=True,
        )
        self._thread.start()
        self._deadline = threading.Timer(self.lifetime, self.stop)
        self._deadline.daemon = True
        self._deadline.start()
        return self.url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._deadline is not None and self._deadline is not threading.current_thread():
            self._deadline.cancel()

    def env(self, token: str = "rehearsal-token") -> dict[str, str]:
        """Environment for Terraform and the provider to use this API (the token is a dummy)."""
        return {
            contracts.DIGITALOCEAN_API_URL_ENV: self.url,
            contracts.DIGITALOCEAN_TOKEN_ENV: token,
            # godo retries 5xx answers with 1-30 s back-off; the simulation answers none, and a
            # broken simulation should fail fast rather than wait.
            contracts.DIGITALOCEAN_HTTP_RETRY_MAX_ENV: "1",
        }

    # ------------------------------------------------------------------ catalogue changes

    def add_size(self, size: Mapping[str, Any]) -> None:
        """Add a Droplet size (``_size``-shaped dict), as DigitalOcean does now and then."""
        with self.lock:
            self.sizes.append(dict(size))

    def set_price(self, slug: str, price_monthly: float) -> None:
        with self.lock:
            for size in self.sizes:
                if size["slug"] == slug:
                    size["price_monthly"] = price_monthly
                    size["price_hourly"] = round(price_monthly / 672, 5)
                    return
        raise KeyError(slug)

    def add_kubernetes_version(self, slug: str) -> None:
        """Offer a new DOKS release (newest first, as the API lists them)."""
        with self.lock:
            self.versions.insert(0, slug)

    def catalogue(self) -> tuple[list[dict[str, Any]], list[str]]:
        with self.lock:
            return copy.deepcopy(self.sizes), list(self.versions)

    def restore_catalogue(self, saved: tuple[list[dict[str, Any]], list[str]]) -> None:
        with self.lock:
            self.sizes, self.versions = copy.deepcopy(saved[0]), list(saved[1])

    # ------------------------------------------------------------------ inspection

    def node_pools(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Every (cluster, node pool) pair, as the API would show them."""
        with self.lock:
            for cluster in self.clusters.values():
                for pool in cluster["node_pools"]:
                    yield self._render_cluster(cluster), self._render_pool(pool)

    def size(self, slug: str) -> dict[str, Any] | None:
        with self.lock:
            return next((dict(s) for s in self.sizes if s["slug"] == slug), None)

    def resource_counts(self) -> dict[str, int]:
        with self.lock:
            return {
                "vpcs": len(self.vpcs),
                "kubernetes_clusters": len(self.clusters),
                "node_pools": sum(len(c["node_pools"]) for c in self.clusters.values()),
                "nodes": sum(
                    len(p["nodes"]) for c in self.clusters.values() for p in c["node_pools"]
                ),
                "nfs_shares": len(self.shares),
            }

    # ------------------------------------------------------------------ helpers

    def _ready(self, key: str) -> bool:
        timer = self._timers.get(key)
        return timer is None or timer.ready(self.ready_after)

    def _find_size(self, slug: str, region: str, field_name: str) -> dict[str, Any]:
        size = next((s for s in self.sizes if s["slug"] == slug), None)
        if size is None:
            raise _unprocessable(f"{field_name}: size {slug!r} does not exist")
        if not size["available"]:
            raise _unprocessable(f"{field_name}: size {slug!r} is not available")
        if region not in size["regions"]:
            raise _unprocessable(f"{field_name}: size {slug!r} is not available in {region}")
        return size

    def _next_ip(self, network: ipaddress.IPv4Network) -> str:
        self._ip_counter += 1
        return str(network.network_address + self._ip_counter)

    def _vpc_networks(self, exclude: str = "") -> list[tuple[str, ipaddress.IPv4Network]]:
        nets = [
            (v["name"], ipaddress.IPv4Network(v["ip_range"]))
            for k, v in self.vpcs.items()
            if k != exclude
        ]
        for cluster in self.clusters.values():
            for key in ("cluster_subnet", "service_subnet"):
                nets.append((f"{cluster['name']} {key}", ipaddress.IPv4Network(cluster[key])))
        return nets

    # ------------------------------------------------------------------ VPCs

    def create_vpc(self, body: Mapping[str, Any]) -> dict[str, Any]:
        region = str(body.get("region", ""))
        name = str(body.get("name", ""))
        if region not in KUBERNETES_REGIONS:
            raise _unprocessable(f"region: {region!r} is not a valid region")
        if not name:
            raise _unprocessable("name: is required")
        if any(v["name"] == name for v in self.vpcs.values()):
            raise _unprocessable(f"name: a VPC named {name!r} already exists")
        ip_range = str(body.get("ip_range") or f"10.{100 + len(self.vpcs)}.0.0/20")
        try:
            network = ipaddress.IPv4Network(ip_range)
        except ValueError as e:
            raise _unprocessable(f"ip_range: {ip_range!r} is not a valid CIDR ({e})") from e
        if not network.is_private or not 16 <= network.prefixlen <= 28:
            raise _unprocessable(f"ip_range: {ip_range} must be a private range from /16 to /28")
        for other, net in self._vpc_networks():
            if network.overlaps(net):
                raise _unprocessable(f"ip_range: {ip_range} overlaps {other} ({net})")
        vpc_id = str(uuid.uuid4())
        vpc = {
            "id": vpc_id,
            "urn": f"do:vpc:{vpc_id}",
            "name": name,
            "description": str(body.get("description", "")),
            "region": region,
            "ip_range": str(network),
            "default": False,
            "created_at": _now(),
        }
        self.vpcs[vpc_id] = vpc
        return vpc

    def _vpc(self, vpc_id: str) -> dict[str, Any]:
        vpc = self.vpcs.get(vpc_id)
        if vpc is None:
            raise _not_found(f"vpc {vpc_id}")
        return vpc

    def delete_vpc(self, vpc_id: str) -> None:
        self._vpc(vpc_id)
        members = [c["name"] for c in self.clusters.values() if c["vpc_uuid"] == vpc_id]
        members += [s["name"] for s in self.shares.values() if vpc_id in s["vpc_ids"]]
        if members:
            raise ApiError(409, "conflict", f"VPC still has members: {', '.join(members)}")
        del self.vpcs[vpc_id]

    # ------------------------------------------------------------------ Kubernetes

    def _resolve_version(self, slug: str) -> str:
        if slug == "latest":
            return self.versions[0]
        if slug not in self.versions:
            raise _unprocessable(
                f"version: {slug!r} is not offered; valid versions: {', '.join(self.versions)}"
            )
        return slug

    def _new_pool(
        self, cluster_id: str, region: str, body: Mapping[str, Any], where: str
    ) -> dict[str, Any]:
        name = str(body.get("name", ""))
        if not name:
            raise _unprocessable(f"{where}.name: is required")
        self._find_size(str(body.get("size", "")), region, f"{where}.size")
        auto_scale = bool(body.get("auto_scale", False))
        count = int(body.get("count", 0) or 0)
        min_nodes = int(body.get("min_nodes", 0) or 0)
        max_nodes = int(body.get("max_nodes", 0) or 0)
        if auto_scale:
            if max_nodes < max(min_nodes, 1):
                raise _unprocessable(f"{where}.max_nodes: must be at least min_nodes and 1")
            # An autoscaled pool starts at min_nodes when no count is given.
            count = count or min_nodes
        elif count < 1:
            # DOKS refuses fixed pools without nodes.
            raise _unprocessable(f"{where}.count: a fixed-size node pool needs at least 1 node")
        pool_id = str(uuid.uuid4())
        pool: dict[str, Any] = {
            "id": pool_id,
            "name": name,
            "size": body["size"],
            "count": count,
            "tags": [*list(body.get("tags") or []), "k8s", f"k8s:{cluster_id}", "k8s:worker"],
            "labels": dict(body.get("labels") or {}),
            "taints": [dict(t) for t in body.get("taints") or []],
            "auto_scale": auto_scale,
            "min_nodes": min_nodes,
            "max_nodes": max_nodes,
            "nodes": [],
        }
        self._timers[pool_id] = _Timed()
        self._resize(pool)
        return pool

    def _resize(self, pool: dict[str, Any]) -> None:
        nodes = pool["nodes"]
        while len(nodes) > pool["count"]:
            nodes.pop()
        while len(nodes) < pool["count"]:
            node_id = str(uuid.uuid4())
            self._timers[node_id] = _Timed()
            nodes.append(
                {
                    "id": node_id,
                    "name": f"{pool['name']}-{secrets.token_hex(3)[:5]}",
                    "droplet_id": str(500000000 + len(self.events) * 10 + len(nodes)),
                    "created_at": _now(),
                    "updated_at": _now(),
                }
            )

    def create_cluster(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("name", ""))
        region = str(body.get("region", ""))
        if region not in KUBERNETES_REGIONS:
            raise _unprocessable(f"region: {region!r} is not a valid Kubernetes region")
        if not name:
            raise _unprocessable("name: is required")
        if any(c["name"] == name for c in self.clusters.values()):
            raise _unprocessable(f"name: a cluster named {name!r} already exists")
        version = self._resolve_version(str(body.get("version", "")))
        vpc_id = str(body.get("vpc_uuid", ""))
        if vpc_id:
            vpc = self._vpc(vpc_id)
            if vpc["region"] != region:
                raise _unprocessable(f"vpc_uuid: VPC {vpc_id} is in {vpc['region']}, not {region}")
        subnets: dict[str, ipaddress.IPv4Network] = {}
        for key, default in (
            ("cluster_subnet", "10.244.0.0/16"),
            ("service_subnet", "10.245.0.0/16"),
        ):
            raw = str(body.get(key) or default)
            try:
                subnets[key] = ipaddress.IPv4Network(raw)
            except ValueError as e:
                raise _unprocessable(f"{key}: {raw!r} is not a valid CIDR") from e
        if subnets["cluster_subnet"].overlaps(subnets["service_subnet"]):
            raise _unprocessable("service_subnet: overlaps cluster_subnet")
        for key, net in subnets.items():
            for other, other_net in self._vpc_networks():
                if net.overlaps(other_net):
                    raise _unprocessable(f"{key}: {net} overlaps {other} ({other_net})")
        pools_in = list(body.get("node_pools") or [])
        if not pools_in:
            raise _unprocessable("node_pools: a cluster needs at least one node pool")
        cluster_id = str(uuid.uuid4())
        pools = [
            self._new_pool(cluster_id, region, p, f"node_pools[{i}]")
            for i, p in enumerate(pools_in)
        ]
        if len({p["name"] for p in pools}) != len(pools):
            raise _unprocessable("node_pools: node pool names must be unique")
        self._ip_counter += 1
        cluster: dict[str, Any] = {
            "id": cluster_id,
            "name": name,
            "region": region,
            "version": version,
            "cluster_subnet": str(subnets["cluster_subnet"]),
            "service_subnet": str(subnets["service_subnet"]),
            "vpc_uuid": vpc_id,
            "ipv4": f"203.0.113.{self._ip_counter % 250 + 1}",
            "endpoint": f"https://{cluster_id}.k8s.ondigitalocean.com",
            "tags": [*list(body.get("tags") or []), "k8s", f"k8s:{cluster_id}"],
            "node_pools": pools,
            "maintenance_policy": {"start_time": "00:00", "duration": "4h0m0s", "day": "any"},
            "auto_upgrade": bool(body.get("auto_upgrade", False)),
            "surge_upgrade": bool(body.get("surge_upgrade", False)),
            "ha": bool(body.get("ha") or False),
            "registry_enabled": False,
            "created_at": _now(),
            "updated_at": _now(),
        }
        # Add-on blocks are echoed as sent (the provider reads them back into state).
        for key, value in body.items():
            if isinstance(value, dict) and "enabled" in value:
                cluster[key] = dict(value)
        self._timers[cluster_id] = _Timed()
        self.clusters[cluster_id] = cluster
        return self._render_cluster(cluster)

    def _cluster(self, cluster_id: str) -> dict[str, Any]:
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise _not_found(f"kubernetes cluster {cluster_id}")
        return cluster

    def _pool(self, cluster_id: str, pool_id: str) -> dict[str, Any]:
        pools: list[dict[str, Any]] = self._cluster(cluster_id)["node_pools"]
        pool = next((p for p in pools if p["id"] == pool_id), None)
        if pool is None:
            raise _not_found(f"node pool {pool_id}")
        return pool

    def _render_pool(self, pool: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(pool)
        for node in out["nodes"]:
            state = "running" if self._ready(node["id"]) else "provisioning"
            node["status"] = {"state": state}
        return out

    def _render_cluster(self, cluster: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(cluster)
        out["status"] = {
            "state": "running" if self._ready(cluster["id"]) else "provisioning",
            "message": "",
        }
        out["node_pools"] = [self._render_pool(p) for p in cluster["node_pools"]]
        return out

    def update_cluster(self, cluster_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(cluster_id)
        for key in ("name", "surge_upgrade", "auto_upgrade", "ha"):
            if key in body and body[key] is not None:
                cluster[key] = body[key]
        if "tags" in body:
            cluster["tags"] = [*list(body["tags"] or []), "k8s", f"k8s:{cluster_id}"]
        for key, value in body.items():
            if isinstance(value, dict) and "enabled" in value:
                cluster[key] = dict(value)
        cluster["updated_at"] = _now()
        return self._render_cluster(cluster)

    def upgrade_cluster(self, cluster_id: str, body: Mapping[str, Any]) -> None:
        cluster = self._cluster(cluster_id)
        version = self._resolve_version(str(body.get("version", "")))
        if self.versions.index(version) > self.versions.index(cluster["version"]):
            raise _unprocessable(
                f"version: cannot downgrade from {cluster['version']} to {version}"
            )
        cluster["version"] = version

    def create_pool(self, cluster_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(cluster_id)
        if any(p["name"] == body.get("name") for p in cluster["node_pools"]):
            raise _unprocessable(f"name: a node pool named {body.get('name')!r} already exists")
        pool = self._new_pool(cluster_id, cluster["region"], body, "node_pool")
        cluster["node_pools"].append(pool)
        return self._render_pool(pool)

    def update_pool(self, cluster_id: str, pool_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        pool = self._pool(cluster_id, pool_id)
        for key in ("name", "auto_scale", "min_nodes", "max_nodes", "labels"):
            if body.get(key) is not None:
                pool[key] = body[key]
        if body.get("taints") is not None:
            pool["taints"] = [dict(t) for t in body["taints"]]
        if body.get("tags") is not None:
            pool["tags"] = [*list(body["tags"]), "k8s", f"k8s:{cluster_id}", "k8s:worker"]
        if body.get("count") is not None:
            pool["count"] = int(body["count"])
        elif pool["auto_scale"]:
            pool["count"] = min(max(pool["count"], pool["min_nodes"]), pool["max_nodes"])
        self._resize(pool)
        return self._render_pool(pool)

    def delete_pool(self, cluster_id: str, pool_id: str) -> None:
        cluster = self._cluster(cluster_id)
        self._pool(cluster_id, pool_id)
        cluster["node_pools"] = [p for p in cluster["node_pools"] if p["id"] != pool_id]

    def delete_cluster(self, cluster_id: str) -> None:
        self._cluster(cluster_id)
        del self.clusters[cluster_id]

    def credentials(self, cluster_id: str) -> dict[str, Any]:
        cluster = self._cluster(cluster_id)
        fake_pem = b"-----BEGIN CERTIFICATE-----\nc2ltdWxhdGVk\n-----END CERTIFICATE-----\n"
        return {
            "server": cluster["endpoint"],
            "certificate_authority_data": base64.b64encode(fake_pem).decode(),
            "client_certificate_data": None,
            "client_key_data": None,
            "token": "simulated-cluster-token",
            "expires_at": datetime.fromtimestamp(time.time() + 7 * 86400, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }

    # ------------------------------------------------------------------ NFS

    def create_share(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("name", ""))
        region = str(body.get("region", ""))
        size = int(body.get("size_gib", 0) or 0)
        vpc_ids = [str(v) for v in body.get("vpc_ids") or []]
        if region not in NFS_REGIONS:
            raise _unprocessable(
                f"region: Managed NFS is not offered in {region!r} "
                f"(offered: {', '.join(NFS_REGIONS)})"
            )
        if size < 50:
            raise _unprocessable(f"size_gib: {size} is below the minimum of 50")
        if not vpc_ids:
            raise _unprocessable("vpc_ids: at least one VPC is required")
        if any(s["name"] == name for s in self.shares.values()):
            raise _unprocessable(f"name: a share named {name!r} already exists")
        vpc = self._vpc(vpc_ids[0])
        if vpc["region"] != region:
            raise _unprocessable(f"vpc_ids: VPC {vpc['id']} is in {vpc['region']}, not {region}")
        share_id = str(uuid.uuid4())
        share = {
            "id": share_id,
            "name": name,
            "size_gib": size,
            "region": region,
            "created_at": _now(),
            "vpc_ids": vpc_ids,
            "host": self._next_ip(ipaddress.IPv4Network(vpc["ip_range"])),
            "mount_path": f"/{share_id.split('-')[0]}",
            "performance_tier": str(body.get("performance_tier") or "standard"),
        }
        self._timers[share_id] = _Timed()
        self.shares[share_id] = share
        return self._render_share(share)

    def _render_share(self, share: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(share)
        if self._ready(share["id"]):
            out["status"] = "ACTIVE"
        else:
            # Host and mount path are known only once the share is active.
            out.update(status="CREATING", host="", mount_path="")
        return out

    def _share(self, share_id: str) -> dict[str, Any]:
        share = self.shares.get(share_id)
        if share is None:
            raise _not_found(f"nfs share {share_id}")
        return share

    # ------------------------------------------------------------------ routing

    def handle(
        self, method: str, path: str, query: Mapping[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        with self.lock:
            return self._route(method, parts, query, body if isinstance(body, dict) else {})

    def _page(
        self, key: str, items: list[Any], query: Mapping[str, list[str]], path: str
    ) -> dict[str, Any]:
        page = max(1, int((query.get("page") or ["1"])[0]))
        per_page = min(self.max_per_page, max(1, int((query.get("per_page") or ["20"])[0])))
        start = (page - 1) * per_page
        pages: dict[str, str] = {}
        base = f"{self.url}{path}?per_page={per_page}&page="
        if page > 1:
            pages["first"] = f"{base}1"
            pages["prev"] = f"{base}{page - 1}"
        last = max(1, -(-len(items) // per_page))
        if page < last:
            pages["next"] = f"{base}{page + 1}"
            pages["last"] = f"{base}{last}"
        return {
            key: items[start : start + per_page],
            "links": {"pages": pages},
            "meta": {"total": len(items)},
        }

    def _route(
        self, method: str, p: list[str], query: Mapping[str, list[str]], body: dict[str, Any]
    ) -> tuple[int, Any]:
        if p[:1] != ["v2"]:
            raise _not_found("/".join(p))
        p = p[1:]
        match method, p:
            case "GET", ["sizes"]:
                return 200, self._page("sizes", copy.deepcopy(self.sizes), query, "/v2/sizes")
            case "GET", ["kubernetes", "options"]:
                return 200, {
                    "options": {
                        "versions": [
                            {
                                "slug": v,
                                "kubernetes_version": v.split("-")[0],
                                "supported_features": [],
                            }
                            for v in self.versions
                        ],
                        "regions": [{"name": r.upper(), "slug": r} for r in KUBERNETES_REGIONS],
                        "sizes": [
                            {"name": s["slug"], "slug": s["slug"]}
                            for s in self.sizes
                            if s["available"]
                        ],
                    }
                }
            case "POST", ["vpcs"]:
                return 201, {"vpc": self.create_vpc(body)}
            case "GET", ["vpcs"]:
                return 200, self._page("vpcs", list(self.vpcs.values()), query, "/v2/vpcs")
            case "GET", ["vpcs", vpc_id]:
                return 200, {"vpc": self._vpc(vpc_id)}
            case (("PUT" | "PATCH"), ["vpcs", vpc_id]):
                vpc = self._vpc(vpc_id)
                for key in ("name", "description"):
                    if body.get(key):
                        vpc[key] = body[key]
                return 200, {"vpc": vpc}
            case "DELETE", ["vpcs", vpc_id]:
                self.delete_vpc(vpc_id)
                return 204, None
            case "POST", ["kubernetes", "clusters"]:
                return 201, {"kubernetes_cluster": self.create_cluster(body)}
            case "GET", ["kubernetes", "clusters"]:
                clusters = [self._render_cluster(c) for c in self.clusters.values()]
                return 200, self._page(
                    "kubernetes_clusters", clusters, query, "/v2/kubernetes/clusters"
                )
            case "GET", ["kubernetes", "clusters", cid]:
                return 200, {"kubernetes_cluster": self._render_cluster(self._cluster(cid))}
            case "PUT", ["kubernetes", "clusters", cid]:
                return 202, {"kubernetes_cluster": self.update_cluster(cid, body)}
            case "POST", ["kubernetes", "clusters", cid, "upgrade"]:
                self.upgrade_cluster(cid, body)
                return 202, None
            case "GET", ["kubernetes", "clusters", cid, "credentials"]:
                return 200, self.credentials(cid)
            case "GET", ["kubernetes", "clusters", cid, "destroy_with_associated_resources"]:
                self._cluster(cid)
                return 200, {"volumes": [], "volume_snapshots": [], "load_balancers": []}
            case "DELETE", [
                "kubernetes",
                "clusters",
                cid,
                "destroy_with_associated_resources",
                "dangerous",
            ]:
                self.delete_cluster(cid)
                return 204, None
            case "DELETE", ["kubernetes", "clusters", cid]:
                self.delete_cluster(cid)
                return 204, None
            case "GET", ["kubernetes", "clusters", cid, "node_pools"]:
                pools = [self._render_pool(x) for x in self._cluster(cid)["node_pools"]]
                return 200, {"node_pools": pools}
            case "POST", ["kubernetes", "clusters", cid, "node_pools"]:
                return 201, {"node_pool": self.create_pool(cid, body)}
            case "GET", ["kubernetes", "clusters", cid, "node_pools", pid]:
                return 200, {"node_pool": self._render_pool(self._pool(cid, pid))}
            case "PUT", ["kubernetes", "clusters", cid, "node_pools", pid]:
                return 202, {"node_pool": self.update_pool(cid, pid, body)}
            case "DELETE", ["kubernetes", "clusters", cid, "node_pools", pid]:
                self.delete_pool(cid, pid)
                return 204, None
            case "POST", ["nfs"]:
                return 201, {"share": self.create_share(body)}
            case "GET", ["nfs"]:
                region = (query.get("region") or [""])[0]
                shares = [
                    self._render_share(s)
                    for s in self.shares.values()
                    if not region or s["region"] == region
                ]
                return 200, self._page("shares", shares, query, "/v2/nfs")
            case "GET", ["nfs", share_id]:
                return 200, {"share": self._render_share(self._share(share_id))}
            case "DELETE", ["nfs", share_id]:
                self._share(share_id)
                del self.shares[share_id]
                return 204, None
        raise _not_found(f"{method} /v2/{'/'.join(p)} is not simulated")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeDigitalOcean
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the provider's own log says what it called

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status: int
        payload: Any
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            status, payload = 401, {"id": "unauthorized", "message": "Unable to authenticate you"}
        else:
            try:
                body = json.loads(raw) if raw else {}
                status, payload = self.fake.handle(
                    self.command, split.path, parse_qs(split.query), body
                )
            except ApiError as e:
                status, payload = e.status, {"id": e.error_id, "message": e.message}
            except (ValueError, KeyError, TypeError) as e:
                status, payload = 400, {"id": "bad_request", "message": f"bad request: {e}"}
        request_id = str(uuid.uuid4())
        if isinstance(payload, dict) and status >= 400:
            payload["request_id"] = request_id
        if self.command != "GET":
            with self.fake.lock:
                self.fake.events.append(Event(self.command, split.path, status))
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Request-Id", request_id)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

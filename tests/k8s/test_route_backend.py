"""Routing backends sit behind vllm_doks.k8s.routing.RouteBackend: GatewayEndpoint imports no
strategy, and a strategy it has never heard of routes through the same protocol."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from constructs import Construct
from support import GPU_POOL, QWEN, STORE, find, new_chart, synth

from vllm_doks import ValidationError
from vllm_doks.k8s import (
    GatewayEndpoint,
    NfsModelStore,
    VllmWorkerPool,
    VllmWorkerPoolProps,
    gateway_endpoint,
)
from vllm_doks.k8s.inference_pool import VllmInferencePool
from vllm_doks.k8s.prefix_router import PrefixAwareRouter
from vllm_doks.k8s.routing import BackendRef, PoolAccess


class CanaryBackend(Construct):
    """A backend the endpoint does not know: a Service in front of one pool."""

    requires_inference_extension = False
    paths_answered_without_key: tuple[str, ...] = ()

    def __init__(self, scope: Construct, id: str, pool: VllmWorkerPool) -> None:
        super().__init__(scope, id)
        self.pool = pool

    def backend_ref(self) -> BackendRef:
        return BackendRef(name="canary", port=8080)

    def routes(self, pool: VllmWorkerPool) -> bool:
        return pool is self.pool

    def pool_access(self) -> tuple[PoolAccess, ...]:
        return ()


def test_gateway_endpoint_imports_no_routing_strategy() -> None:
    tree = ast.parse(Path(gateway_endpoint.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "vllm_doks.k8s.routing" in imported
    assert not imported & {"vllm_doks.k8s.prefix_router", "vllm_doks.k8s.inference_pool"}


def test_the_shipped_strategies_implement_the_protocol() -> None:
    members = ("backend_ref", "routes", "pool_access", "requires_inference_extension", "node")
    for cls in (PrefixAwareRouter, VllmInferencePool):
        assert all(hasattr(cls, m) for m in members), cls
    assert PrefixAwareRouter.paths_answered_without_key == ("/v1/models",)
    assert VllmInferencePool.requires_inference_extension


def _pool() -> tuple[Construct, VllmWorkerPool]:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN, node_pool_name=GPU_POOL)
    return chart, VllmWorkerPool(
        chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name=GPU_POOL)
    )


def test_a_new_strategy_routes_without_editing_the_endpoint() -> None:
    chart, pool = _pool()
    GatewayEndpoint(chart, "Gateway").route_to(pool, backend=CanaryBackend(chart, "Canary", pool))
    route = find(synth(chart), "HTTPRoute", "vllm-route")
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "canary", "port": 8080}]


def test_a_backend_of_another_pool_is_refused() -> None:
    chart, pool = _pool()
    other = VllmWorkerPool(
        chart,
        "Other",
        VllmWorkerPoolProps(model=pool.props.model, gpu_node_pool_name=GPU_POOL, name="other"),
    )
    with pytest.raises(ValidationError, match="backend"):
        GatewayEndpoint(chart, "Gateway").route_to(
            pool, backend=CanaryBackend(chart, "Canary", other)
        )

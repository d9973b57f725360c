"""Canary and blue-green rollouts: one route, two pools serving one model name, weighted
backendRefs in agreed steps, a canary-header rule for the smoke test, and the promotion."""

from __future__ import annotations

from typing import Any

import cdk8s
import pytest
from conftest import validate_objects
from support import Obj, k8s_app

from vllm_doks.k8s import (
    CanarySplit,
    GatewayEndpoint,
    LoraAdapter,
    LoraAdapterProps,
    LoraOptions,
    NfsModelStore,
    NfsModelStoreProps,
    VllmWorkerPool,
    VllmWorkerPoolProps,
)
from vllm_doks.k8s.canary import CANARY_HEADER
from vllm_doks.k8s.prefix_router import PrefixAwareRouter, PrefixAwareRouterProps
from vllm_doks.validation import ValidationError

QWEN = "Qwen/Qwen2.5-7B-Instruct"
QWEN_NEW = "Qwen/Qwen2.5-7B-Instruct-1M"
POOL = "gpu"


class Blueprint:
    """A chart with a stable pool ``vllm`` and a canary pool ``vllm-green`` (another model
    checkpoint, same served name ``qwen``)."""

    def __init__(self, *, canary_name: str = "qwen", lora: bool = False) -> None:
        self.chart = cdk8s.Chart(k8s_app(), "test")
        store = NfsModelStore(
            self.chart,
            "Models",
            NfsModelStoreProps(nfs_server="10.200.0.5", nfs_path="/1/models", capacity_gi=500),
        )
        old, new = store.add_model(QWEN), store.add_model(QWEN_NEW)

        def adapters(model: Any, tag: str) -> LoraOptions | None:
            if not lora:
                return None
            sql = LoraAdapter(
                self.chart,
                f"Sql{tag}",
                LoraAdapterProps(
                    base_model=model, adapter_id=f"acme/sql-{tag}", name="qwen-sql", rank=16
                ),
            )
            return LoraOptions(adapters=(sql,))

        self.stable = VllmWorkerPool(
            self.chart,
            "Blue",
            VllmWorkerPoolProps(
                model=old,
                gpu_node_pool_name=POOL,
                served_model_name="qwen",
                lora=adapters(old, "a"),
            ),
        )
        self.canary = VllmWorkerPool(
            self.chart,
            "Green",
            VllmWorkerPoolProps(
                model=new,
                gpu_node_pool_name=POOL,
                name="vllm-green",
                served_model_name=canary_name,
                lora=adapters(new, "b"),
            ),
        )
        self.gateway = GatewayEndpoint(self.chart, "Gateway")

    def route(self, **split: Any) -> Obj:
        self.gateway.route_to(
            self.stable,
            route_name="vllm-route",
            canary=CanarySplit(pool=self.canary, **split),
        )
        objs = list(cdk8s.Testing.synth(self.chart))
        assert validate_objects(objs) == []
        (route,) = [o for o in objs if o["kind"] == "HTTPRoute"]
        return route


def backends(rule: Obj) -> list[tuple[str, int | None]]:
    return [(b["name"], b.get("weight")) for b in rule["backendRefs"]]


@pytest.mark.parametrize("weight", [0, 10, 50, 100])
def test_each_step_splits_the_route_by_weight(weight: int) -> None:
    route = Blueprint().route(weight=weight)
    main, smoke = route["spec"]["rules"]
    assert backends(main) == [("vllm", 100 - weight), ("vllm-green", weight)]
    assert main["matches"] == [{"path": {"type": "PathPrefix", "value": "/v1"}}]
    # The smoke test's rule: same path plus the header, the canary alone, whatever the weight.
    assert backends(smoke) == [("vllm-green", None)]
    assert smoke["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/v1"},
            "headers": [{"name": CANARY_HEADER, "type": "Exact", "value": "true"}],
        }
    ]


def test_promotion_leaves_the_canary_alone_on_the_route() -> None:
    route = Blueprint().route(weight=100, promoted=True)
    (rule,) = route["spec"]["rules"]
    assert backends(rule) == [("vllm-green", None)]
    assert "vllm" not in str(backends(rule)).replace("vllm-green", "")


def test_the_route_keeps_its_name_through_the_rollout() -> None:
    names = {Blueprint().route(weight=w)["metadata"]["name"] for w in (0, 10, 100)}
    names.add(Blueprint().route(weight=100, promoted=True)["metadata"]["name"])
    assert names == {"vllm-route"}


def test_rewrites_and_timeouts_carry_over_to_the_smoke_rule() -> None:
    blueprint = Blueprint()
    blueprint.gateway.route_to(
        blueprint.stable,
        path_prefix="/qwen/v1",
        rewrite_prefix_to="/v1",
        request_timeout="300s",
        canary=CanarySplit(pool=blueprint.canary, weight=10),
    )
    (route,) = [o for o in cdk8s.Testing.synth(blueprint.chart) if o["kind"] == "HTTPRoute"]
    main, smoke = route["spec"]["rules"]
    assert smoke["filters"] == main["filters"] and smoke["timeouts"] == main["timeouts"]
    assert smoke["matches"][0]["path"] == main["matches"][0]["path"]


def test_lora_pools_split_too_when_they_serve_the_same_adapter_names() -> None:
    route = Blueprint(lora=True).route(weight=10)
    assert backends(route["spec"]["rules"][0]) == [("vllm", 90), ("vllm-green", 10)]


def problems(build: Any) -> list[tuple[str, object]]:
    with pytest.raises(ValidationError) as err:
        build()
    return [(p.field, p.value) for p in err.value.problems]


def test_a_canary_serving_another_name_is_refused() -> None:
    blueprint = Blueprint(canary_name="qwen-v2")
    assert problems(lambda: blueprint.route(weight=10)) == [("canary.pool", "test/Green")]


def test_weights_move_in_the_agreed_steps_only() -> None:
    assert problems(lambda: Blueprint().route(weight=30)) == [("canary.weight", 30)]
    assert Blueprint().route(weight=30, steps=(0, 30, 100))
    assert problems(lambda: Blueprint().route(weight=10, steps=(10, 100))) == [
        ("canary.steps", (10, 100))
    ]
    assert problems(lambda: Blueprint().route(weight=0, steps=(0, 50, 20, 100))) == [
        ("canary.steps", (0, 50, 20, 100))
    ]


def test_promotion_comes_after_the_last_step() -> None:
    assert problems(lambda: Blueprint().route(weight=50, promoted=True)) == [
        ("canary.promoted", True)
    ]


def test_a_pool_cannot_be_its_own_canary_nor_sit_behind_a_router() -> None:
    blueprint = Blueprint()
    assert problems(
        lambda: blueprint.gateway.route_to(
            blueprint.stable, canary=CanarySplit(pool=blueprint.stable, weight=10)
        )
    ) == [("canary.pool", "test/Blue")]
    router = PrefixAwareRouter(
        blueprint.chart, "Router", PrefixAwareRouterProps(pools=[blueprint.stable])
    )
    assert problems(
        lambda: blueprint.gateway.route_to(
            blueprint.stable, backend=router, canary=CanarySplit(pool=blueprint.canary, weight=10)
        )
    ) == [("canary", "test/Green")]


def test_lora_adapter_names_must_match_on_both_sides() -> None:
    blueprint = Blueprint(lora=True)
    plain = VllmWorkerPool(
        blueprint.chart,
        "Plain",
        VllmWorkerPoolProps(
            model=blueprint.canary.model,
            gpu_node_pool_name=POOL,
            name="vllm-plain",
            served_model_name="qwen",
        ),
    )
    assert problems(
        lambda: blueprint.gateway.route_to(
            blueprint.stable, canary=CanarySplit(pool=plain, weight=10)
        )
    ) == [("canary.pool", "test/Plain")]

"""Canary and blue-green rollouts: two worker pools behind one route, with weights.

A new model version (new weights, a new vLLM image, a new quantization) goes into a second
:class:`~vllm_doks.k8s.vllm_worker_pool.VllmWorkerPool` serving the *same* served model name.
:meth:`GatewayEndpoint.route_to(stable, canary=CanarySplit(pool=green, weight=10))
<vllm_doks.k8s.gateway_endpoint.GatewayEndpoint.route_to>` then sends 90 % of the route's
requests to the stable pool and 10 % to the canary (HTTPRoute ``backendRefs[].weight``). The
rollout is a sequence of applies, each a step of ``steps``: ``weight=0`` (deployed, smoke-tested
through the Gateway with the canary header, no user traffic), 10, 50, 100, then
``promoted=True`` (the stable pool leaves the route; delete it afterwards). Rolling back is the
previous step.

Smoke test: every rule also gets a twin that matches the header ``x-vllm-doks-canary: true``
and goes to the canary only (Gateway API picks the rule with more header matches), so the
canary can be checked through the real Gateway, API key and all, before any user traffic:
:class:`~vllm_doks.k8s.smoke_test.SmokeTest` with ``canary=True`` is the Job that does it
(the model and each adapter), and :mod:`vllm_doks.promotion` refuses to write a promotion
until that Job succeeded. By hand::

    curl -H "x-vllm-doks-canary: true" -H "Authorization: Bearer $KEY" http://$GW/v1/models

Gateway implementation: weights are the Gateway API's ``HTTPBackendRef.weight`` (CRD
``gateway.networking.k8s.io`` v1.3.0: "the proportion of requests forwarded to the referenced
backend ... weight/(sum of all weights)"; 0 sends nothing). Cilium documents weighted traffic
splitting for its Gateway API ("Traffic Splitting Example",
https://docs.cilium.io/en/stable/network/servicemesh/gateway-api/splitting/), and
DigitalOcean's announcement of the managed Gateway API on DOKS (Cilium-based, September 2025)
lists traffic splitting and canary releases among its features. Which Cilium release a DOKS
cluster runs was NOT established from the sources at hand (DOKS release notes were not
available here): check it (``kubectl -n kube-system get ds cilium -o
jsonpath='{..image}'``) and measure the split once (the README's canary section counts
responses) before relying on a small weight.
"""

from __future__ import annotations

from dataclasses import dataclass

# mypy cannot see this package: setuptools maps it from imports/ at install time only.
from vllm_doks._imports.io.k8s.networking.gateway import (
    HttpRouteSpecRulesBackendRefs,
    HttpRouteSpecRulesMatches,
    HttpRouteSpecRulesMatchesHeadersType,
)
from vllm_doks.k8s.bindings import gateway_api
from vllm_doks.k8s.vllm_worker_pool import VllmWorkerPool
from vllm_doks.validation import Problems

#: Request header that sends a request to the canary pool whatever the weights (the smoke
#: test's way in). Our own name: nothing outside this project reads it.
CANARY_HEADER = "x-vllm-doks-canary"
CANARY_HEADER_VALUE = "true"

#: Default rollout steps (percent of the route's requests to the canary).
DEFAULT_STEPS: tuple[int, ...] = (0, 10, 50, 100)


@dataclass(frozen=True, kw_only=True)
class CanarySplit:
    """The canary side of a route (``GatewayEndpoint.route_to(..., canary=...)``)."""

    pool: VllmWorkerPool
    """The new pool; it must serve the stable pool's served model name (and the same LoRA
    adapter names), in the same namespace. Required."""
    weight: int = 0
    """Percent of the route's requests that go to the canary, one of ``steps``; the stable
    pool gets the rest. Default 0: deployed and reachable with the canary header only."""
    steps: tuple[int, ...] = DEFAULT_STEPS
    """The weights a rollout goes through, increasing, from 0 to 100; ``weight`` must be one
    of them, so a rollout moves in the steps agreed on. Default ``(0, 10, 50, 100)``."""
    promoted: bool = False
    """The rollout is done: the canary takes every request and the stable pool leaves the
    route (delete its pool in the next change). Only after ``weight`` reached 100 and the
    canary's smoke test passed (checked on the cluster by
    :func:`vllm_doks.promotion.require_smoke_tests_passed` before the output is written).
    Default ``False``."""
    header_route: bool = True
    """Add the rules that send requests carrying ``x-vllm-doks-canary: true`` to the canary
    only (the smoke test). Default ``True``; left out once promoted."""

    def problems(self, stable: VllmWorkerPool, *, has_backend: bool) -> Problems:
        """Problems of this split on a route to ``stable`` (field names ``canary.*``)."""
        problems = Problems()
        if not problems.check(
            isinstance(self.pool, VllmWorkerPool),
            "canary.pool",
            self.pool,
            "must be a VllmWorkerPool",
        ):
            return problems
        canary = self.pool
        problems.check(
            canary is not stable,
            "canary.pool",
            canary.node.path,
            "is the route's own pool; a canary is a second pool",
        )
        problems.check(
            canary.namespace == stable.namespace,
            "canary.pool",
            canary.node.path,
            f"is in namespace {canary.namespace!r}, the stable pool in {stable.namespace!r}",
        )
        problems.check(
            canary.served_model_name == stable.served_model_name,
            "canary.pool",
            canary.node.path,
            f"serves {canary.served_model_name!r} but the stable pool serves "
            f"{stable.served_model_name!r}: clients send one name, and a request that reaches "
            f"a pool without it gets 404 (set served_model_name on the canary)",
        )
        stable_adapters, canary_adapters = _adapter_names(stable), _adapter_names(canary)
        problems.check(
            stable_adapters == canary_adapters,
            "canary.pool",
            canary.node.path,
            f"serves the LoRA adapters {sorted(canary_adapters)} but the stable pool "
            f"{sorted(stable_adapters)}: a request for an adapter must work on either pool",
        )
        steps = self.steps
        steps_ok = problems.check(
            isinstance(steps, tuple)
            and len(steps) >= 2
            and all(isinstance(s, int) and not isinstance(s, bool) for s in steps)
            and list(steps) == sorted(set(steps))
            and steps[0] == 0
            and steps[-1] == 100,
            "canary.steps",
            steps,
            "must be increasing whole percentages from 0 to 100, e.g. (0, 10, 50, 100)",
        )
        if steps_ok:
            problems.check(
                self.weight in steps,
                "canary.weight",
                self.weight,
                f"must be one of the rollout steps {list(steps)}",
            )
        if self.promoted:
            problems.check(
                self.weight == 100,
                "canary.promoted",
                self.promoted,
                "needs weight 100 first (the last step, with the stable pool still on the "
                "route for a rollback)",
            )
        problems.check(
            not has_backend,
            "canary",
            canary.node.path,
            "cannot be combined with a router or InferencePool backend (each routes one "
            "pool); split between the pools' Services",
        )
        return problems

    def backend_refs(self, stable: VllmWorkerPool) -> list[HttpRouteSpecRulesBackendRefs]:
        """The weighted backends: stable ``100 - weight``, canary ``weight``; promoted, the
        canary alone."""
        canary = gateway_api.HttpRouteSpecRulesBackendRefs(
            name=self.pool.service_name,
            port=self.pool.service_port,
            weight=self.weight,
        )
        if self.promoted:
            return [
                gateway_api.HttpRouteSpecRulesBackendRefs(
                    name=self.pool.service_name,
                    port=self.pool.service_port,
                )
            ]
        return [
            gateway_api.HttpRouteSpecRulesBackendRefs(
                name=stable.service_name,
                port=stable.service_port,
                weight=100 - self.weight,
            ),
            canary,
        ]

    def header_matches(
        self, matches: list[HttpRouteSpecRulesMatches]
    ) -> list[HttpRouteSpecRulesMatches]:
        """``matches`` each with the canary header added (the smoke test's rule)."""
        header = gateway_api.HttpRouteSpecRulesMatchesHeaders(
            name=CANARY_HEADER,
            value=CANARY_HEADER_VALUE,
            type=HttpRouteSpecRulesMatchesHeadersType.EXACT,
        )
        return [
            gateway_api.HttpRouteSpecRulesMatches(path=m.path, headers=[header]) for m in matches
        ]

    @property
    def canary_only_ref(self) -> HttpRouteSpecRulesBackendRefs:
        return gateway_api.HttpRouteSpecRulesBackendRefs(
            name=self.pool.service_name, port=self.pool.service_port
        )


def _adapter_names(pool: VllmWorkerPool) -> set[str]:
    lora = pool.props.lora
    return {a.name for a in lora.adapters} if lora is not None else set()

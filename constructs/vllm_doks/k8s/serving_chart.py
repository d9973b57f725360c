"""VllmServingChart: the seed's Stack 2 as one cdk8s chart, built from the app configuration.

This is the composition the app synthesizes (``dist/vllm.yaml``) and that the Terraform
variant of Stack 2 converts to ``kubernetes_manifest`` resources: one source of truth.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cdk8s
from constructs import Construct

from vllm_doks import contracts
from vllm_doks.capacity import progress_deadline_seconds
from vllm_doks.config import ArchitectureConfig, InfraOutputs, ServedModel
from vllm_doks.handoff import GpuPoolRef
from vllm_doks.k8s.gateway_endpoint import GatewayEndpoint
from vllm_doks.k8s.jobs import MAX_JOB_BASE_NAME
from vllm_doks.k8s.model_download import ModelDownload
from vllm_doks.k8s.names import dns_label
from vllm_doks.k8s.namespace import add_namespace
from vllm_doks.k8s.nfs_model_store import NfsModelStore
from vllm_doks.k8s.outputs import stack_outputs
from vllm_doks.k8s.probes import ProbeTimings
from vllm_doks.k8s.smoke_test import (
    CILIUM_GATEWAY_CLASS,
    SMOKE_TEST_APP,
    SmokeTest,
    SmokeTestProps,
)
from vllm_doks.k8s.vllm_worker_pool import VllmWorkerPool, VllmWorkerPoolProps
from vllm_doks.preflight import capacity_plan, parse_max_model_len, vllm_settings
from vllm_doks.rollout_config import resolve_canaries
from vllm_doks.validation import Problems
from vllm_doks.wiring import gateway_endpoint_props, model_store_props

if TYPE_CHECKING:
    # The options' modules load only when a configuration uses them (``make bench``: the
    # Kubernetes-only synth against the bare libraries' import time).
    from vllm_doks.k8s.autoscaling import VllmAutoscaler
    from vllm_doks.k8s.dashboard import VllmDashboard
    from vllm_doks.k8s.inference_pool import VllmInferencePool
    from vllm_doks.k8s.lora import LoraOptions
    from vllm_doks.k8s.pod_monitor import VllmPodMonitor
    from vllm_doks.k8s.prefix_router import PrefixAwareRouter

#: Annotation listing the values of an object that are examples, not a deployment's.
EXAMPLE_VALUES_ANNOTATION = "vllm-doks.io/example-values"

CHART_NAME = "vllm"

#: The worker pool's default rollout deadline (a first rollout waits for the download).
DEFAULT_PROGRESS_DEADLINE_SECONDS = 1800


class VllmServingChart(cdk8s.Chart):
    """Namespace, NFS model store with the model's download Job, the vLLM worker pool and a
    Gateway routing to it, wired from one configuration and Stack 1's outputs.

    Secure by default: the namespace enforces the ``restricted`` Pod Security Standard,
    clients need the API key from the Secret ``config.api_key_secret``, only the Gateway's
    data path reaches vLLM (``config.network_policy``), and the Gateway also serves HTTPS when
    ``config.tls_certificate_secret`` names a TLS Secret.

    Optional, off by default: a KEDA autoscaler (``config.autoscaling``), a PodMonitor
    (``config.pod_monitor``, labelled ``release: config.prometheus_release``; pods of
    ``config.prometheus_namespace`` may then ``GET /metrics``) and a Grafana dashboard
    (``config.grafana_dashboard``).
    """

    def __init__(
        self, scope: Construct, id: str, config: ArchitectureConfig, infra: InfraOutputs
    ) -> None:
        # No Chart(namespace=...): it would also stamp the namespace on the PersistentVolume.
        super().__init__(scope, id, disable_resource_name_hashes=True)
        self.config = config
        self.infra = infra
        add_namespace(self, config.namespace)
        self.store = NfsModelStore(self, "Models", model_store_props(config, infra))
        if infra.examples:
            # Said in the output itself, not only on stderr, so a reviewer of dist/ sees it.
            self.store.persistent_volume.metadata.add_annotation(
                EXAMPLE_VALUES_ANNOTATION,
                ", ".join(f"{k}={getattr(infra, k)}" for k in infra.examples)
                + " (example values: synthesize with --infra-outputs before applying)",
            )
        # Large models take minutes to read from NFS: the startup probe's window grows with the
        # model's size (never below the seed's), and the rollout deadline follows it.
        self.capacity = capacity_plan(config, infra, Problems())
        settings = vllm_settings(config, Problems())
        windows = {
            p.name: p.startup_window_seconds for p in (self.capacity.pools if self.capacity else ())
        }
        strategies = {
            p.name: p.load_strategy for p in (self.capacity.pools if self.capacity else ())
        }
        self.pools: list[VllmWorkerPool] = []
        for index, served in enumerate(config.served_models()):
            # Stack 1's GPU pool (its size as the outputs give it, like its name), or the
            # model's own pool of its size: one value for the download and the pods.
            gpu_pool = (
                GpuPoolRef(served.gpu_node_pool, served.gpu_size)
                if served.gpu_node_pool
                else GpuPoolRef(
                    infra.gpu_node_pool_name, infra.gpu_node_pool_size or served.gpu_size
                )
            )
            model = self.store.add_model(
                served.id,
                gpu_pool=gpu_pool,
                hf_token_secret_name=config.hf_token_secret or None,
                revision=served.revision or None,
                source=config.model_source(served),
            )
            probes = ProbeTimings()
            window = windows.get(served.name)
            if window is not None:
                needed = math.ceil(
                    (window - probes.startup_initial_delay_seconds) / probes.startup_period_seconds
                )
                probes = dataclasses.replace(
                    probes, startup_failure_threshold=max(probes.startup_failure_threshold, needed)
                )
            self.pools.append(
                VllmWorkerPool(
                    self,
                    "Workers" if index == 0 else f"Workers-{served.name}",
                    VllmWorkerPoolProps(
                        probes=probes,
                        progress_deadline_seconds=max(
                            DEFAULT_PROGRESS_DEADLINE_SECONDS,
                            progress_deadline_seconds(probes.startup_budget_seconds),
                        ),
                        model=model,
                        gpu_pool=gpu_pool,
                        replicas=served.replicas,
                        quantization=served.quantization or None,
                        max_model_len=parse_max_model_len(served.max_model_len, "", Problems()),
                        kv_cache_dtype=settings.kv_cache_dtype,
                        gpu_memory_utilization=settings.gpu_memory_utilization,
                        image=config.vllm_image or None,
                        hf_token_secret_name=config.hf_token_secret or None,
                        api_key_secret_name=config.api_key_secret or None,
                        network_policy=config.network_policy,
                        # Prometheus scrapes the pods directly: admit it to GET /metrics only
                        # (vLLM serves its other non-/v1 paths without the API key).
                        metrics_from_namespaces=(
                            (config.prometheus_namespace,)
                            if config.pod_monitor and config.network_policy
                            else ()
                        ),
                        name=served.name,
                        served_model_name=served.served_name,
                        lora=self._lora(served, model),
                        compile_cache=config.compile_cache,
                        # The plan's --safetensors-load-strategy (eager unless the checkpoint
                        # fits in the node's page cache); the contract's NFS default without.
                        safetensors_load_strategy=strategies.get(served.name)
                        or contracts.VLLM_SAFETENSORS_LOAD_STRATEGY_NFS,
                    ),
                )
            )
        self.model = self.pools[0].model
        self.pool = self.pools[0]
        self.endpoint = GatewayEndpoint(self, "Endpoint", gateway_endpoint_props(config))
        self.router: PrefixAwareRouter | None = None
        self.inference_pools: list[VllmInferencePool] = []
        self._route(config)
        self.smoke_tests: list[SmokeTest] = []
        #: One per canary pool: its model and adapters through the canary header (a promotion
        #: checks that it succeeded).
        self.canary_smoke_tests: list[SmokeTest] = []
        # Only Cilium's Gateway Service name is known; another class needs smoke_test_url.
        if config.smoke_test and (
            config.smoke_test_url or config.gateway_class == CILIUM_GATEWAY_CLASS
        ):
            # One authenticated completion through the Gateway per served model, on its route;
            # a canary pool is tested below, through the canary header.
            for pool, served in zip(self.pools, config.served_models(), strict=True):
                if served.canary is not None:
                    continue
                first = not self.smoke_tests
                self.smoke_tests.append(
                    SmokeTest(
                        self,
                        "SmokeTest" if first else f"SmokeTest-{pool.deployment_name}",
                        SmokeTestProps(
                            endpoint=self.endpoint,
                            pool=pool,
                            path_prefix=served.path_prefix,
                            url=config.smoke_test_url or None,
                            network_policy=config.network_policy,
                            # Retry as long as the rollout may take: download, then cold start.
                            deadline_seconds=pool.props.progress_deadline_seconds,
                            # The first keeps the single model's name; later ones are named
                            # after their pool (like a canary's), never by position.
                            name=None
                            if first
                            else dns_label(
                                f"{pool.deployment_name}-{SMOKE_TEST_APP}", MAX_JOB_BASE_NAME
                            ),
                        ),
                    )
                )
            for stable, canary in self._canaries.items():
                pool = self.pools[canary]
                split = config.served_models()[canary].canary
                self.canary_smoke_tests.append(
                    SmokeTest(
                        self,
                        f"SmokeTest-{pool.deployment_name}",
                        SmokeTestProps(
                            endpoint=self.endpoint,
                            pool=pool,
                            canary=True,
                            gates_promotion=split is not None and split.promoted,
                            path_prefix=config.served_models()[stable].path_prefix,
                            url=config.smoke_test_url or None,
                            network_policy=config.network_policy,
                            deadline_seconds=pool.props.progress_deadline_seconds,
                        ),
                    )
                )
        #: The first model's smoke test, as before several models (``None`` when off).
        self.smoke_test = self.smoke_tests[0] if self.smoke_tests else None
        self.autoscalers: list[VllmAutoscaler] = []
        self.pod_monitors: list[VllmPodMonitor] = []
        self.dashboards: list[VllmDashboard] = []
        for index, pool in enumerate(self.pools):
            suffix = "" if index == 0 else f"-{pool.deployment_name}"
            if config.autoscaling:
                from vllm_doks.k8s.autoscaling import VllmAutoscaler, VllmAutoscalerProps

                self.autoscalers.append(
                    VllmAutoscaler(
                        self,
                        f"Autoscaler{suffix}",
                        VllmAutoscalerProps(
                            pool=pool,
                            prometheus_server_address=config.prometheus_url,
                            min_replicas=config.autoscaling_min,
                            max_replicas=config.autoscaling_max_replicas,
                            gpu_node_count=config.gpu_nodes_max,
                        ),
                    )
                )
            if config.pod_monitor:
                from vllm_doks.k8s.pod_monitor import VllmPodMonitor, VllmPodMonitorProps

                self.pod_monitors.append(
                    VllmPodMonitor(
                        self,
                        f"Metrics{suffix}",
                        VllmPodMonitorProps(
                            pool=pool,
                            prometheus_namespace=config.prometheus_namespace,
                            release=config.prometheus_release or None,
                        ),
                    )
                )
            if config.grafana_dashboard:
                from vllm_doks.k8s.dashboard import VllmDashboard, VllmDashboardProps

                self.dashboards.append(
                    VllmDashboard(self, f"Dashboard{suffix}", VllmDashboardProps(pool=pool))
                )
        # The first model's, as before several models: handles for the seed's single pool.
        self.autoscaler = self.autoscalers[0] if self.autoscalers else None
        self.pod_monitor = self.pod_monitors[0] if self.pod_monitors else None
        self.dashboard = self.dashboards[0] if self.dashboards else None

    def _lora(self, served: ServedModel, model: ModelDownload) -> LoraOptions | None:
        """A model entry's LoRA adapters (each downloaded like the model), or ``None``."""
        if not served.adapters and not served.lora_runtime_updates:
            return None
        from vllm_doks.k8s.lora import LoraAdapter, LoraAdapterProps, LoraOptions

        adapters = tuple(
            LoraAdapter(
                self,
                f"Adapter-{served.name}-{i}",
                LoraAdapterProps(
                    base_model=model,
                    adapter_id=a.id,
                    revision=a.revision or None,
                    rank=a.rank,
                    name=a.name or None,
                    base_model_id=a.base_model or None,
                    hf_token_secret_name=self.config.hf_token_secret or None,
                ),
            )
            for i, a in enumerate(served.adapters)
        )
        return LoraOptions(
            adapters=adapters,
            max_loras=served.max_loras,
            max_lora_rank=served.max_lora_rank,
            runtime_updates=served.lora_runtime_updates,
        )

    def _route(self, config: ArchitectureConfig) -> None:
        """The Gateway's routes for ``config.routing``: the pools' Services (round-robin), one
        router behind ``/v1`` for every model (prefix-aware: it picks the pool by the model
        named in the request body; ``route_to`` sends ``GET /v1/models``, which the router
        answers without the API key, to the first pool while a key is required), or an
        InferencePool per pool (Gateway API Inference Extension)."""
        served = config.served_models()
        problems = Problems(where="models")
        canaries = resolve_canaries([m.name for m in served], [m.canary for m in served], problems)
        for canary in canaries.values():
            problems.check(
                config.routing == "round-robin",
                f"models[{canary}].canary",
                served[canary].canary,
                f"needs routing: round-robin (weights split a route between two Services; "
                f"routing is {config.routing!r})",
            )
        problems.raise_if_any()
        #: ``{stable pool index: canary pool index}``.
        self._canaries = canaries
        if config.routing == "prefix-aware":
            from vllm_doks.k8s.prefix_router import PrefixAwareRouter, PrefixAwareRouterProps

            self.router = PrefixAwareRouter(
                self, "Router", PrefixAwareRouterProps(pools=self.pools)
            )
            self.endpoint.route_to(self.pools[0], backend=self.router)
            return
        canary_pools = set(canaries.values())
        for index, (pool, model) in enumerate(zip(self.pools, served, strict=True)):
            if index in canary_pools:
                continue  # on its stable entry's route
            split = None
            if index in canaries:
                c = served[canaries[index]].canary
                assert c is not None
                from vllm_doks.k8s.canary import CanarySplit

                split = CanarySplit(
                    pool=self.pools[canaries[index]],
                    weight=c.weight,
                    steps=c.steps,
                    promoted=c.promoted,
                )
            backend: VllmInferencePool | None = None
            if config.routing == "inference-pool":
                from vllm_doks.k8s.inference_pool import VllmInferencePool, VllmInferencePoolProps

                backend = VllmInferencePool(
                    self,
                    "InferencePool" if index == 0 else f"InferencePool-{pool.deployment_name}",
                    VllmInferencePoolProps(
                        pool=pool,
                        network_policy=config.network_policy,
                        gateway_namespaces=(
                            (config.inference_gateway_namespace,)
                            if config.inference_gateway_namespace
                            else ()
                        ),
                    ),
                )
                self.inference_pools.append(backend)
            self.endpoint.route_to(
                pool,
                path_prefix=model.path_prefix,
                rewrite_prefix_to=model.rewrite_prefix_to,
                backend=backend,
                canary=split,
            )

    @property
    def outputs(self) -> dict[str, str | int]:
        """The seed's eight Stack 2 outputs."""
        return stack_outputs(self.pool, self.endpoint)


def synth_serving_chart(
    config: ArchitectureConfig, infra: InfraOutputs, outdir: Path
) -> dict[str, Any]:
    """Write ``<outdir>/vllm.yaml`` and ``<outdir>/meta/outputs.json``; return the report.

    The report sits in ``meta/`` because ``kubectl apply -f dist/`` would try to apply a JSON
    file at the top level (it does not descend into folders without ``-R``).
    """
    app = cdk8s.App(outdir=str(outdir), output_file_extension=".yaml")
    chart = VllmServingChart(app, CHART_NAME, config, infra)
    app.synth()
    report: dict[str, Any] = {
        "outputs": chart.outputs,
        "example_values": {k: getattr(infra, k) for k in infra.examples},
    }
    meta = outdir / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "outputs.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    if chart.capacity is not None:
        (meta / "capacity.json").write_text(chart.capacity.to_json() + "\n")
        report["capacity_table"] = chart.capacity.table()
    return report

"""Kubernetes layer (CDK8s): Stack 2 of the reference architecture as constructs.

* :class:`NfsModelStore` - the Managed NFS share as a PersistentVolume + claim in a namespace;
  :meth:`NfsModelStore.add_model` downloads a Hugging Face model into it once
  (:class:`ModelDownload`).
* :class:`VllmWorkerPool` - vLLM on a GPU node pool serving one stored model: Deployment,
  Service, PodDisruptionBudget, and the network policies that let only the Gateway reach it;
  clients authenticate with an API key from a Secret.
* :class:`GatewayEndpoint` - a Gateway API Gateway (HTTP, optionally HTTPS);
  :meth:`GatewayEndpoint.route_to` sends traffic to a worker pool.

No key or token ever appears in the synthesized objects: they reference Secrets that users
create with kubectl (``vllm-api-key``, and ``hf-token`` for gated models).

Every object carries an explicit, readable name and namespace (the seed's by default). The
Namespace itself is left to the chart's owner (see :func:`add_namespace`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vllm_doks._lazy import lazy_exports

#: Each public name and the module it comes from, imported on first use: a chart with no
#: autoscaler, dashboard or router does not load their modules (the Kubernetes-only synth is
#: measured against the bare libraries' import time by ``make bench``).
_LAZY: dict[str, str] = {
    name: module
    for module, names in {
        "vllm_doks.handoff": ("GpuPoolRef",),
        "vllm_doks.k8s.autoscaling": ("VllmAutoscaler", "VllmAutoscalerProps"),
        "vllm_doks.k8s.canary": ("CanarySplit",),
        "vllm_doks.k8s.dashboard": ("VllmDashboard", "VllmDashboardProps"),
        "vllm_doks.k8s.gateway_endpoint": (
            "HTTPS_LISTENER_NAME",
            "LISTENER_NAME",
            "GatewayEndpoint",
            "GatewayEndpointProps",
        ),
        "vllm_doks.k8s.inference_pool": (
            "DEFAULT_EPP_IMAGE",
            "VllmInferencePool",
            "VllmInferencePoolProps",
        ),
        "vllm_doks.k8s.lora": ("LoraAdapter", "LoraAdapterProps", "LoraOptions"),
        "vllm_doks.k8s.model_download": ("ModelDownload",),
        "vllm_doks.k8s.names": (
            "COMPLETION_MARKER",
            "DEFAULT_NAMESPACE",
            "DEFAULT_VLLM_IMAGE",
            "GPU_RESOURCE",
            "NODE_POOL_LABEL",
            "VLLM_QUANTIZATION_METHODS",
            "model_name_from_id",
        ),
        "vllm_doks.k8s.namespace": ("add_namespace",),
        "vllm_doks.k8s.nfs_model_store": (
            "FIRST_DOWNLOAD_JOB_NAME",
            "NfsModelStore",
            "NfsModelStoreProps",
        ),
        "vllm_doks.k8s.outputs": ("STACK_OUTPUT_DESCRIPTIONS", "stack_outputs"),
        "vllm_doks.k8s.pod_monitor": ("VllmPodMonitor", "VllmPodMonitorProps"),
        "vllm_doks.k8s.prefix_router": (
            "DEFAULT_ROUTER_IMAGE",
            "ROUTING_LOGICS",
            "PrefixAwareRouter",
            "PrefixAwareRouterProps",
            "RoutingLogic",
        ),
        "vllm_doks.k8s.probes": ("ProbeTimings",),
        "vllm_doks.k8s.vllm_worker_pool": ("AntiAffinity", "VllmWorkerPool", "VllmWorkerPoolProps"),
    }.items()
    for name in names
}

__all__ = [
    "COMPLETION_MARKER",
    "DEFAULT_EPP_IMAGE",
    "DEFAULT_NAMESPACE",
    "DEFAULT_ROUTER_IMAGE",
    "DEFAULT_VLLM_IMAGE",
    "FIRST_DOWNLOAD_JOB_NAME",
    "GPU_RESOURCE",
    "HTTPS_LISTENER_NAME",
    "LISTENER_NAME",
    "NODE_POOL_LABEL",
    "ROUTING_LOGICS",
    "STACK_OUTPUT_DESCRIPTIONS",
    "VLLM_QUANTIZATION_METHODS",
    "AntiAffinity",
    "CanarySplit",
    "GatewayEndpoint",
    "GatewayEndpointProps",
    "GpuPoolRef",
    "LoraAdapter",
    "LoraAdapterProps",
    "LoraOptions",
    "ModelDownload",
    "NfsModelStore",
    "NfsModelStoreProps",
    "PrefixAwareRouter",
    "PrefixAwareRouterProps",
    "ProbeTimings",
    "RoutingLogic",
    "VllmAutoscaler",
    "VllmAutoscalerProps",
    "VllmDashboard",
    "VllmDashboardProps",
    "VllmInferencePool",
    "VllmInferencePoolProps",
    "VllmPodMonitor",
    "VllmPodMonitorProps",
    "VllmWorkerPool",
    "VllmWorkerPoolProps",
    "add_namespace",
    "model_name_from_id",
    "stack_outputs",
]

if TYPE_CHECKING:
    from vllm_doks.handoff import GpuPoolRef
    from vllm_doks.k8s.autoscaling import VllmAutoscaler, VllmAutoscalerProps
    from vllm_doks.k8s.canary import CanarySplit
    from vllm_doks.k8s.dashboard import VllmDashboard, VllmDashboardProps
    from vllm_doks.k8s.gateway_endpoint import (
        HTTPS_LISTENER_NAME,
        LISTENER_NAME,
        GatewayEndpoint,
        GatewayEndpointProps,
    )
    from vllm_doks.k8s.inference_pool import (
        DEFAULT_EPP_IMAGE,
        VllmInferencePool,
        VllmInferencePoolProps,
    )
    from vllm_doks.k8s.lora import LoraAdapter, LoraAdapterProps, LoraOptions
    from vllm_doks.k8s.model_download import ModelDownload
    from vllm_doks.k8s.names import (
        COMPLETION_MARKER,
        DEFAULT_NAMESPACE,
        DEFAULT_VLLM_IMAGE,
        GPU_RESOURCE,
        NODE_POOL_LABEL,
        VLLM_QUANTIZATION_METHODS,
        model_name_from_id,
    )
    from vllm_doks.k8s.namespace import add_namespace
    from vllm_doks.k8s.nfs_model_store import (
        FIRST_DOWNLOAD_JOB_NAME,
        NfsModelStore,
        NfsModelStoreProps,
    )
    from vllm_doks.k8s.outputs import STACK_OUTPUT_DESCRIPTIONS, stack_outputs
    from vllm_doks.k8s.pod_monitor import VllmPodMonitor, VllmPodMonitorProps
    from vllm_doks.k8s.prefix_router import (
        DEFAULT_ROUTER_IMAGE,
        ROUTING_LOGICS,
        PrefixAwareRouter,
        PrefixAwareRouterProps,
        RoutingLogic,
    )
    from vllm_doks.k8s.probes import ProbeTimings
    from vllm_doks.k8s.vllm_worker_pool import AntiAffinity, VllmWorkerPool, VllmWorkerPoolProps

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

"""vllm-doks: vLLM on DigitalOcean Kubernetes with Managed NFS, as typed constructs.

Two layers, each loaded only when used (importing the DigitalOcean provider alone costs about
a second, and a Kubernetes-only synth should not pay it):

* ``vllm_doks.cloud`` (CDKTF): VPC, DOKS cluster, GPU node pool, Managed NFS share.
* ``vllm_doks.k8s`` (CDK8s): ``NfsModelStore``, ``VllmWorkerPool``, ``GatewayEndpoint``.

Every public name is re-exported here lazily, e.g. ``from vllm_doks import NfsModelStore``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vllm_doks._lazy import lazy_exports
from vllm_doks._node import wire_jsii_node

# Before anything below can import a jsii library.
wire_jsii_node()

from vllm_doks.validation import Problem, ValidationError  # noqa: E402

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # cloud layer (CDKTF)
    "InfraProps": "vllm_doks.cloud",
    "VllmInfraStack": "vllm_doks.cloud",
    "DoksCluster": "vllm_doks.cloud",
    "DoksClusterProps": "vllm_doks.cloud",
    "GpuNodePool": "vllm_doks.cloud",
    "GpuNodePoolProps": "vllm_doks.cloud",
    "ModelShare": "vllm_doks.cloud",
    "ModelShareProps": "vllm_doks.cloud",
    "SpacesStateBackend": "vllm_doks.cloud",
    "SUPPORTED_REGIONS": "vllm_doks.cloud",
    # Stack 2 through Terraform: its Kubernetes provider bindings load only when asked for.
    "VllmKubernetesStack": "vllm_doks.cloud.kubernetes_stack",
    "KubernetesObjectsStackProps": "vllm_doks.cloud.kubernetes_stack",
    "StackOneValues": "vllm_doks.cloud.kubernetes_stack",
    "HfTokenSecret": "vllm_doks.cloud.kubernetes_stack",
    "ApiKeySecret": "vllm_doks.cloud.kubernetes_stack",
    # Kubernetes layer (CDK8s)
    "NfsModelStore": "vllm_doks.k8s",
    "PrefixAwareRouter": "vllm_doks.k8s",
    "PrefixAwareRouterProps": "vllm_doks.k8s",
    "VllmInferencePool": "vllm_doks.k8s",
    "VllmInferencePoolProps": "vllm_doks.k8s",
    "VllmAutoscaler": "vllm_doks.k8s",
    "VllmAutoscalerProps": "vllm_doks.k8s",
    "VllmPodMonitor": "vllm_doks.k8s",
    "VllmPodMonitorProps": "vllm_doks.k8s",
    "VllmDashboard": "vllm_doks.k8s",
    "VllmDashboardProps": "vllm_doks.k8s",
    "NfsModelStoreProps": "vllm_doks.k8s",
    "ModelDownload": "vllm_doks.k8s",
    "VllmWorkerPool": "vllm_doks.k8s",
    "VllmWorkerPoolProps": "vllm_doks.k8s",
    "ProbeTimings": "vllm_doks.k8s",
    "GatewayEndpoint": "vllm_doks.k8s",
    "GatewayEndpointProps": "vllm_doks.k8s",
    "GpuPoolRef": "vllm_doks.handoff",
    "LoraAdapter": "vllm_doks.k8s",
    "LoraAdapterProps": "vllm_doks.k8s",
    "LoraOptions": "vllm_doks.k8s",
    "CanarySplit": "vllm_doks.k8s",
    "model_name_from_id": "vllm_doks.k8s",
}

__all__ = [
    "SUPPORTED_REGIONS",
    "ApiKeySecret",
    "CanarySplit",
    "DoksCluster",
    "DoksClusterProps",
    "GatewayEndpoint",
    "GatewayEndpointProps",
    "GpuNodePool",
    "GpuNodePoolProps",
    "GpuPoolRef",
    "HfTokenSecret",
    "InfraProps",
    "KubernetesObjectsStackProps",
    "LoraAdapter",
    "LoraAdapterProps",
    "LoraOptions",
    "ModelDownload",
    "ModelShare",
    "ModelShareProps",
    "NfsModelStore",
    "NfsModelStoreProps",
    "PrefixAwareRouter",
    "PrefixAwareRouterProps",
    "ProbeTimings",
    "Problem",
    "SpacesStateBackend",
    "StackOneValues",
    "ValidationError",
    "VllmAutoscaler",
    "VllmAutoscalerProps",
    "VllmDashboard",
    "VllmDashboardProps",
    "VllmInferencePool",
    "VllmInferencePoolProps",
    "VllmInfraStack",
    "VllmKubernetesStack",
    "VllmPodMonitor",
    "VllmPodMonitorProps",
    "VllmWorkerPool",
    "VllmWorkerPoolProps",
    "__version__",
    "model_name_from_id",
]

if TYPE_CHECKING:
    from vllm_doks.cloud import (
        SUPPORTED_REGIONS,
        DoksCluster,
        DoksClusterProps,
        GpuNodePool,
        GpuNodePoolProps,
        InfraProps,
        ModelShare,
        ModelShareProps,
        SpacesStateBackend,
        VllmInfraStack,
    )
    from vllm_doks.cloud.kubernetes_stack import (
        ApiKeySecret,
        HfTokenSecret,
        KubernetesObjectsStackProps,
        StackOneValues,
        VllmKubernetesStack,
    )
    from vllm_doks.handoff import GpuPoolRef
    from vllm_doks.k8s import (
        CanarySplit,
        GatewayEndpoint,
        GatewayEndpointProps,
        LoraAdapter,
        LoraAdapterProps,
        LoraOptions,
        ModelDownload,
        NfsModelStore,
        NfsModelStoreProps,
        PrefixAwareRouter,
        PrefixAwareRouterProps,
        ProbeTimings,
        VllmAutoscaler,
        VllmAutoscalerProps,
        VllmDashboard,
        VllmDashboardProps,
        VllmInferencePool,
        VllmInferencePoolProps,
        VllmPodMonitor,
        VllmPodMonitorProps,
        VllmWorkerPool,
        VllmWorkerPoolProps,
        model_name_from_id,
    )


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

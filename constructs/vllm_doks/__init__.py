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

from vllm_doks import k8s as _k8s  # noqa: E402  (lazy: loads no construct module)
from vllm_doks.validation import Problem, ValidationError  # noqa: E402

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # Kubernetes layer (CDK8s): every name the package exports (itself lazy, so this loads
    # no construct module).
    **dict.fromkeys(_k8s.__all__, "vllm_doks.k8s"),
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
}

__all__ = [
    "SUPPORTED_REGIONS",
    "ApiKeySecret",
    "DoksCluster",
    "DoksClusterProps",
    "GpuNodePool",
    "GpuNodePoolProps",
    "HfTokenSecret",
    "InfraProps",
    "KubernetesObjectsStackProps",
    "ModelShare",
    "ModelShareProps",
    "Problem",
    "SpacesStateBackend",
    "StackOneValues",
    "ValidationError",
    "VllmInfraStack",
    "VllmKubernetesStack",
    "__version__",
]
__all__ += _k8s.__all__

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
    from vllm_doks.k8s import *  # noqa: F403


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

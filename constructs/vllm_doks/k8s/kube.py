"""cdk8s-plus-28's Kubernetes structs and L1 objects (``k8s.Container``,
``k8s.KubeDeployment``, ...) under the same names and signatures, made the fast way:
``kube.Container(name=...)`` is :func:`~vllm_doks.k8s.objects.struct` of ``k8s.Container``,
``kube.KubeDeployment(scope, id, ...)`` is :func:`~vllm_doks.k8s.objects.api_object` of
``k8s.KubeDeployment`` (no runtime typeguard, the tree sent as JSON; see
:mod:`vllm_doks.k8s.objects`). Every other name (``Quantity``, ``IntOrString``, enums) is
cdk8s-plus' own. mypy sees the module itself, so each call is checked as the original's."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdk8s_plus_28.k8s import *  # noqa: F403
else:
    from vllm_doks.k8s.objects import Unchecked

    _K8S = Unchecked("cdk8s_plus_28.k8s")

    def __getattr__(name: str) -> Any:
        return getattr(_K8S, name)

"""Namespaced RBAC for a workload that reads the Kubernetes API (router, endpoint picker)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks.k8s import kube

#: (API group, resources, verbs) of one Role rule.
RbacRule = tuple[str, Sequence[str], Sequence[str]]


def add_service_account_with_role(
    scope: Construct,
    metadata: Callable[[str], k8s.ObjectMeta],
    *,
    namespace: str,
    account_name: str,
    role_name: str,
    rules: Sequence[RbacRule],
) -> tuple[k8s.KubeServiceAccount, k8s.KubeRole, k8s.KubeRoleBinding]:
    """A ServiceAccount bound to a Role with exactly ``rules`` in ``namespace``.

    The account does not mount its token by default; the pod that needs the API opts in.
    """
    account = kube.KubeServiceAccount(
        scope,
        "ServiceAccount",
        metadata=metadata(account_name),
        automount_service_account_token=False,
    )
    role = kube.KubeRole(
        scope,
        "Role",
        metadata=metadata(role_name),
        rules=[
            kube.PolicyRule(api_groups=[group], resources=list(res), verbs=list(verbs))
            for group, res, verbs in rules
        ],
    )
    binding = kube.KubeRoleBinding(
        scope,
        "RoleBinding",
        metadata=metadata(role_name),
        role_ref=kube.RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=role_name),
        subjects=[kube.Subject(kind="ServiceAccount", name=account_name, namespace=namespace)],
    )
    return account, role, binding

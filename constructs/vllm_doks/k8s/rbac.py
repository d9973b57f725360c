"""Namespaced RBAC for a workload that reads the Kubernetes API (router, endpoint picker)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks.k8s.objects import api_object, struct

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
    account = api_object(
        k8s.KubeServiceAccount,
        scope,
        "ServiceAccount",
        metadata=metadata(account_name),
        automount_service_account_token=False,
    )
    role = api_object(
        k8s.KubeRole,
        scope,
        "Role",
        metadata=metadata(role_name),
        rules=[
            struct(k8s.PolicyRule, api_groups=[group], resources=list(res), verbs=list(verbs))
            for group, res, verbs in rules
        ],
    )
    binding = api_object(
        k8s.KubeRoleBinding,
        scope,
        "RoleBinding",
        metadata=metadata(role_name),
        role_ref=struct(
            k8s.RoleRef, api_group="rbac.authorization.k8s.io", kind="Role", name=role_name
        ),
        subjects=[
            struct(k8s.Subject, kind="ServiceAccount", name=account_name, namespace=namespace)
        ],
    )
    return account, role, binding

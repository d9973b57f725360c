"""A tiny helper for the Namespace object the constructs deliberately do not create.

The constructs only *reference* their namespace, so several of them (or another project's
objects) can share one; whoever owns the chart creates it once, e.g. with this helper.
"""

from __future__ import annotations

from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks.k8s import kube
from vllm_doks.k8s.names import DEFAULT_NAMESPACE
from vllm_doks.validation import Problems, check_dns_label

#: Pod Security Standards levels the admission controller knows.
POD_SECURITY_LEVELS = ("privileged", "baseline", "restricted")


def add_namespace(
    scope: Construct,
    name: str = DEFAULT_NAMESPACE,
    *,
    id: str = "Namespace",
    pod_security: str | None = "restricted",
) -> k8s.KubeNamespace:
    """Add ``Namespace/<name>`` to ``scope``. Apply it before the objects that live in it.

    :param pod_security: Pod Security Standards level that the built-in admission controller
        enforces in the namespace (and warns and audits about), via the
        ``pod-security.kubernetes.io/*`` labels. Default ``"restricted"``: every pod of these
        constructs meets it (non-root, seccomp ``RuntimeDefault``, all capabilities dropped,
        no privilege escalation, only emptyDir, PVC and Secret volumes), and the admission
        controller then refuses any pod in the namespace that does not. So do cert-manager's
        ACME HTTP-01 solver pods, which it starts in the Gateway's namespace (since
        cert-manager 1.9.1, cert-manager/cert-manager#5338). ``None`` for no labels.
    """
    problems = Problems(where=lambda: f"{scope.node.path}/{id}")
    check_dns_label(problems, "name", name)
    problems.check(
        pod_security is None or pod_security in POD_SECURITY_LEVELS,
        "pod_security",
        pod_security,
        f"must be one of {', '.join(POD_SECURITY_LEVELS)}, or None",
    )
    problems.raise_if_any()
    labels = (
        {
            f"pod-security.kubernetes.io/{mode}": pod_security
            for mode in ("enforce", "audit", "warn")
        }
        if pod_security is not None
        else None
    )
    return kube.KubeNamespace(scope, id, metadata=kube.ObjectMeta(name=name, labels=labels))

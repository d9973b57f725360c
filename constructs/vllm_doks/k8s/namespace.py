"""A tiny helper for the Namespace object the constructs deliberately do not create.

The constructs only *reference* their namespace, so several of them (or another project's
objects) can share one; whoever owns the chart creates it once, e.g. with this helper.
"""

from __future__ import annotations

from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks.k8s.names import DEFAULT_NAMESPACE
from vllm_doks.validation import Problems, check_dns_label


def add_namespace(
    scope: Construct, name: str = DEFAULT_NAMESPACE, *, id: str = "Namespace"
) -> k8s.KubeNamespace:
    """Add ``Namespace/<name>`` to ``scope``. Apply it before the objects that live in it."""
    problems = Problems(where=f"{scope.node.path}/{id}")
    check_dns_label(problems, "name", name)
    problems.raise_if_any()
    return k8s.KubeNamespace(scope, id, metadata=k8s.ObjectMeta(name=name))

"""Run-once Jobs (the model download, the smoke test): one way to lock them down, name them
and fence them.

Both run one pod to completion on our nodes: never restarted in place (a retry is a fresh pod
whose predecessors' logs remain), no service account token, no service links, the restricted
pod security context. A Job's pod template is immutable, so re-applying a changed one under
the same name fails ("spec.template: field is immutable"); each is therefore named
``<base>-<hash of its pod template>``, so a change is a new Job and the old one is never
patched. And nothing connects to either: a NetworkPolicy admits no ingress.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

import cdk8s
from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks.k8s import kube
from vllm_doks.k8s.network_policies import download_policy
from vllm_doks.k8s.objects import to_json
from vllm_doks.k8s.pod_security import pod_security_context
from vllm_doks.k8s.suppressions import checkov_skip_annotations

#: Hex digits of the pod template's hash appended to a run-once Job's base name.
JOB_HASH_LENGTH = 8

#: Longest base name of a run-once Job: the name plus ``-<hash>`` must stay a DNS label.
MAX_JOB_BASE_NAME = 63 - 1 - JOB_HASH_LENGTH


def template_hash(template: object) -> str:
    """Short hash of a rendered pod template (JSON-able), as the Job's name suffix."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:JOB_HASH_LENGTH]


def run_once_pod_spec(
    *,
    containers: Sequence[k8s.Container],
    volumes: Sequence[k8s.Volume],
    node_selector: Mapping[str, str] | None,
    tolerations: Sequence[k8s.Toleration] | None,
) -> k8s.PodSpec:
    """The pod of a run-once Job: locked down as the module says, on the given nodes."""
    return kube.PodSpec(
        # Never: each retry is a fresh pod whose predecessors' logs remain.
        restart_policy="Never",
        automount_service_account_token=False,
        enable_service_links=False,
        security_context=pod_security_context(),
        tolerations=list(tolerations) if tolerations is not None else None,
        node_selector=dict(node_selector) if node_selector is not None else None,
        containers=list(containers),
        volumes=list(volumes),
    )


class RunOnceJob:
    """A Job named by its pod template's hash, with its (optional) deny-ingress policy, made
    in ``scope`` under the ids ``Job`` and ``NetworkPolicy``. ``labels`` go on both objects;
    the policy (named ``network_policy_name``, by default as the Job) selects the pods by their
    template's labels."""

    job: k8s.KubeJob
    """The Job."""
    name: str
    """The Job's name: ``<base_name>-<hash of its pod template>``."""
    network_policy: cdk8s.ApiObject | None
    """The NetworkPolicy admitting no ingress to the Job's pods, if asked for."""

    def __init__(
        self,
        scope: Construct,
        *,
        base_name: str,
        namespace: str,
        labels: Mapping[str, str],
        spec: k8s.JobSpec,
        job_labels: Mapping[str, str] | None = None,
        skips: Sequence[tuple[str, str]],
        network_policy: bool,
        network_policy_name: str | None = None,
        restrict_egress: bool = False,
    ) -> None:
        template = to_json(spec.template)
        self.name = f"{base_name}-{template_hash(template)}"
        self.job = kube.KubeJob(
            scope,
            "Job",
            metadata=kube.ObjectMeta(
                name=self.name,
                namespace=namespace,
                # Extra labels on the Job alone are not part of the template: the Job keeps its
                # name when they change.
                labels={**labels, **(job_labels or {})},
                annotations=checkov_skip_annotations(skips),
            ),
            spec=spec,
        )
        pod_labels = template.get("metadata", {}).get("labels", {})
        self.network_policy = (
            download_policy(
                scope,
                "NetworkPolicy",
                name=network_policy_name or self.name,
                namespace=namespace,
                labels=dict(labels),
                selector=pod_labels,
                restrict_egress=restrict_egress,
            )
            if network_policy
            else None
        )

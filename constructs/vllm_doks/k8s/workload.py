"""ServingWorkload: the Deployment, Service, PodDisruptionBudget and network policies of a
serving workload, written once for the worker pool, the router and the endpoint picker.

Modelled on cdk8s-plus' ``Deployment`` (``pod.ts``): the construct that owns the pods
subclasses :class:`ServingWorkload`, names its pods (:meth:`ServingWorkload._select`), builds
its pod spec and hands it to :meth:`ServingWorkload._serve`, which makes the objects as the
construct's own children (construct ids ``Deployment``, ``Service``,
``PodDisruptionBudget``), so their paths and names stay those of the subclass. Who may reach
the pods goes through :attr:`ServingWorkload.connections` (``allow_from(peer, port=...)``,
:mod:`vllm_doks.k8s.network_policies`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import cdk8s
from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks.k8s import kube
from vllm_doks.k8s.checks import check_namespace_names, check_quantity, check_request_within_limit
from vllm_doks.k8s.network_policies import GATEWAY, Connections, Namespaces
from vllm_doks.k8s.pod_security import container_security_context, resource_requirements
from vllm_doks.k8s.values import int_or_string
from vllm_doks.validation import Problems

#: The label every workload's pods carry with the workload's name (the seed's ``app: vllm``).
APP_LABEL = "app"


# The struct factories are cached (immutable values; see pod_security.py on why).
@cache
def rolling_update(*, max_surge: int, max_unavailable: int) -> k8s.DeploymentStrategy:
    """A ``RollingUpdate`` strategy with these bounds."""
    return kube.DeploymentStrategy(
        type="RollingUpdate",
        rolling_update=kube.RollingUpdateDeployment(
            max_surge=int_or_string(max_surge),
            max_unavailable=int_or_string(max_unavailable),
        ),
    )


@cache
def service_port(
    name: str, port: int, *, target: int | str | None = None, app_protocol: str | None = None
) -> k8s.ServicePort:
    """A TCP Service port ``name`` on ``port``, to the container port ``target`` (default: the
    container port of the same name)."""
    return kube.ServicePort(
        name=name,
        port=port,
        target_port=int_or_string(name if target is None else target),
        protocol="TCP",
        app_protocol=app_protocol,
    )


def serving_container(
    *,
    name: str,
    image: str,
    args: Sequence[str],
    ports: Mapping[str, int],
    env: Sequence[k8s.EnvVar],
    resources: k8s.ResourceRequirements,
    volume_mounts: Sequence[k8s.VolumeMount],
    startup_probe: k8s.Probe | None = None,
    readiness_probe: k8s.Probe | None = None,
    liveness_probe: k8s.Probe | None = None,
    lifecycle: k8s.Lifecycle | None = None,
) -> k8s.Container:
    """A workload's serving container: its image pulled only when the node lacks it, locked
    down (:func:`~vllm_doks.k8s.pod_security.container_security_context`), one named TCP
    container port per entry of ``ports``, in order."""
    return kube.Container(
        name=name,
        image=image,
        image_pull_policy="IfNotPresent",
        args=list(args),
        ports=[
            kube.ContainerPort(name=port_name, container_port=port, protocol="TCP")
            for port_name, port in ports.items()
        ],
        env=list(env),
        resources=resources,
        security_context=container_security_context(),
        volume_mounts=list(volume_mounts),
        startup_probe=startup_probe,
        readiness_probe=readiness_probe,
        liveness_probe=liveness_probe,
        lifecycle=lifecycle,
    )


@dataclass(frozen=True, kw_only=True)
class Resources:
    """CPU and memory requests and limits of a container (all four set)."""

    cpu_request: str
    """CPU request, e.g. ``"500m"``. No default."""
    cpu_limit: str
    """CPU limit, at least the request. No default."""
    memory_request: str
    """Memory request, e.g. ``"1Gi"``. No default."""
    memory_limit: str
    """Memory limit, at least the request. No default."""

    @classmethod
    def of(cls, props: object) -> Resources:
        """The four fields of props that have them under these names (the router's and the
        endpoint picker's); :meth:`check` says what is wrong with their values."""
        return cls(**{f.name: getattr(props, f.name) for f in dataclasses.fields(cls)})

    def check(self, problems: Problems) -> None:
        """Each a Kubernetes quantity, each request within its limit (field names as the
        props' own: ``cpu_request``, ...)."""
        fields = [f.name for f in dataclasses.fields(self)]
        # A list, not a generator: every bad quantity is reported, not only the first.
        if all([check_quantity(problems, f, getattr(self, f)) for f in fields]):
            check_request_within_limit(
                problems, "cpu_request", self.cpu_request, "cpu_limit", self.cpu_limit
            )
            check_request_within_limit(
                problems, "memory_request", self.memory_request, "memory_limit", self.memory_limit
            )

    def requirements(self) -> k8s.ResourceRequirements:
        return resource_requirements(
            {"cpu": self.cpu_request, "memory": self.memory_request},
            {"cpu": self.cpu_limit, "memory": self.memory_limit},
        )


class IngressOptions(Protocol):
    """The props fields of a workload whose pods only the Gateway (and some namespaces) may
    reach: the worker pool's and the router's."""

    @property
    def name(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def network_policy(self) -> bool: ...
    @property
    def cilium_gateway_policy(self) -> bool: ...
    @property
    def allow_from_namespaces(self) -> tuple[str, ...]: ...


def check_ingress_options(problems: Problems, props: IngressOptions) -> None:
    """The two switches are booleans, the namespaces a tuple of names."""
    for field_name in ("network_policy", "cilium_gateway_policy"):
        value = getattr(props, field_name)
        problems.check(isinstance(value, bool), field_name, value, "must be True or False")
    check_namespace_names(problems, "allow_from_namespaces", props.allow_from_namespaces)


class ServingWorkload(Construct):
    """Pods behind a ClusterIP Service, run by a Deployment, with an optional
    PodDisruptionBudget and the network policies :attr:`connections` makes (a base class: see
    the module)."""

    namespace: str
    """Namespace of the workload's objects."""
    deployment: cdk8s.ApiObject
    """The Deployment."""
    service: cdk8s.ApiObject
    """The ClusterIP Service in front of the pods."""
    pod_disruption_budget: cdk8s.ApiObject | None
    """The PodDisruptionBudget ``<name>-pdb``, or ``None`` when the workload has none."""
    connections: Connections
    """Who may reach the pods (:class:`~vllm_doks.k8s.network_policies.Connections`)."""
    network_policy: cdk8s.ApiObject | None = None
    """The NetworkPolicy ``<name>-ingress`` that restricts ingress to the pods, if any."""
    cilium_network_policy: cdk8s.ApiObject | None = None
    """The CiliumNetworkPolicy ``<name>-from-gateway`` admitting the Gateway's data path, if
    any."""
    _selector: dict[str, str]

    def _select(self, *, namespace: str, app: str) -> None:
        """Name the pods: label ``app=<app>``, in ``namespace``. Call before building the pod
        spec, which selects on them (anti-affinity)."""
        self.namespace = namespace
        self._selector = {APP_LABEL: app}
        self.connections = Connections(self, namespace=namespace, selector=self._selector)

    @property
    def selector_labels(self) -> dict[str, str]:
        """Labels that select this workload's pods (a copy; changing it changes nothing)."""
        return dict(self._selector)

    def _metadata(self, name: str) -> k8s.ObjectMeta:
        return kube.ObjectMeta(name=name, namespace=self.namespace, labels=self.selector_labels)

    def _serve(
        self,
        *,
        name: str,
        replicas: int,
        strategy: k8s.DeploymentStrategy,
        pod_spec: k8s.PodSpec,
        ports: Sequence[k8s.ServicePort],
        annotations: Mapping[str, str] | None = None,
        progress_deadline_seconds: int | None = None,
        disruption_budget: str | None = None,
    ) -> None:
        """Make the Deployment and the Service ``name``, and with ``disruption_budget`` (its
        name) a PodDisruptionBudget allowing one voluntary disruption at a time."""
        labels = self.selector_labels
        self.deployment = kube.KubeDeployment(
            self,
            "Deployment",
            metadata=kube.ObjectMeta(
                name=name,
                namespace=self.namespace,
                labels=labels,
                annotations=dict(annotations) if annotations is not None else None,
            ),
            spec=kube.DeploymentSpec(
                replicas=replicas,
                progress_deadline_seconds=progress_deadline_seconds,
                strategy=strategy,
                selector=kube.LabelSelector(match_labels=labels),
                template=kube.PodTemplateSpec(
                    metadata=kube.ObjectMeta(labels=labels),
                    spec=pod_spec,
                ),
            ),
        )
        self.service = kube.KubeService(
            self,
            "Service",
            metadata=self._metadata(name),
            spec=kube.ServiceSpec(type="ClusterIP", selector=labels, ports=list(ports)),
        )
        self.pod_disruption_budget = None
        if disruption_budget is not None:
            self.pod_disruption_budget = kube.KubePodDisruptionBudget(
                self,
                "PodDisruptionBudget",
                metadata=self._metadata(disruption_budget),
                spec=kube.PodDisruptionBudgetSpec(
                    max_unavailable=int_or_string(1),
                    selector=kube.LabelSelector(match_labels=labels),
                ),
            )

    def _restrict_ingress(self, props: IngressOptions) -> None:
        """With ``network_policy``, the workload's own policies: ``NetworkPolicy/<name>-ingress``
        admits ``port`` from ``allow_from_namespaces`` only, and with
        ``cilium_gateway_policy`` a ``CiliumNetworkPolicy/<name>-from-gateway`` admits it from
        Cilium's Gateway data path (see :mod:`vllm_doks.k8s.network_policies`)."""
        if not props.network_policy:
            return
        name, port = props.name, props.port
        self.network_policy = self.connections.isolate(
            allow=Namespaces(props.allow_from_namespaces),
            port=port,
            id="NetworkPolicy",
            name=f"{name}-ingress",
        )
        if props.cilium_gateway_policy:
            self.cilium_network_policy = self.connections.allow_from(
                GATEWAY, port=port, id="CiliumNetworkPolicy", name=f"{name}-from-gateway"
            )

"""Network policies of the serving workloads and the download Jobs, all made here.

A workload's ``connections`` (:class:`Connections`, after cdk8s-plus' ``pod.connections``) admits
a peer to a port of its pods: ``pool.connections.allow_from(GATEWAY, port=8000, ...)``, a
:class:`Namespaces` peer, or another workload (its pods). A routing backend says what it must
reach in the pools it routes (``vllm_doks.k8s.routing.PoolAccess``) and owns those policies.

Who may reach vLLM's port on DOKS
---------------------------------
DOKS runs Cilium as its CNI and implements the Gateway API with Cilium's Envoy. Cilium does
not forward Gateway traffic to a backend from a pod of some namespace: its Envoy proxies the
request, and the backend sees it arrive with Cilium's reserved ``ingress`` security identity
("the Cilium Envoy instance that handles ingress L7 traffic", Cilium docs, Policy Language >
Entities). A reserved identity has no namespace or pod labels, so no selector of a plain
``networking.k8s.io/v1`` NetworkPolicy matches it: a NetworkPolicy that admits the gateway's
namespace, ``kube-system`` (where Cilium and its Envoy run), all pods or the VPC's ``ipBlock``
still drops the Gateway's requests (cilium/cilium#36509 reports exactly that policy failing;
the maintainers' answer in cilium/cilium#39959 and #47617 is a rule for ``reserved:ingress``).
Only a CiliumNetworkPolicy can name it: ``fromEntities: [ingress]``.

So a pool gets two policies that Cilium enforces together (their allows add up, and any policy
selecting a pod makes it deny everything else):

* ``NetworkPolicy/<pool>-ingress`` (standard, portable): selects the pool's pods for Ingress.
  By default it allows nothing, which makes the pods deny all ingress on any CNI; it admits
  the vLLM port (every path) from the namespaces listed in ``allow_from_namespaces``.
* ``CiliumNetworkPolicy/<pool>-metrics`` (with ``metrics_from_namespaces``): pods of those
  namespaces (e.g. Prometheus') may ``GET /metrics`` and nothing else, an L7 rule Cilium's
  Envoy enforces: vLLM serves ``/tokenize``, ``/invocations``, ... without its API key.
* ``CiliumNetworkPolicy/<pool>-from-gateway``: admits the vLLM port from the ``ingress``
  entity, i.e. from the Gateway's data path and nothing else. Switch it off on a cluster
  without Cilium and list the gateway's namespace in ``allow_from_namespaces`` instead.

What is not affected: the preStop hook and vLLM's internal ports talk over ``127.0.0.1``
inside the pod's own network namespace, which no policy filters; the kubelet's probes come
from the pod's own node, which Cilium always admits (its ``allow-localhost`` default), as
Kubernetes expects of every NetworkPolicy implementation.

The download Job
----------------
Nothing ever connects to a download pod, so ``NetworkPolicy/<job>`` denies all ingress. It
also limits egress to what a download needs: DNS to the cluster's DNS pods
(``k8s-app: kube-dns``, CoreDNS on DOKS) and HTTPS to public addresses (Hugging Face and its
CDNs; their addresses change, and FQDN rules need Cilium-specific policy). Private, link-local
(including the droplet metadata service at 169.254.169.254) and shared address ranges stay
closed, so a compromised download cannot reach the VPC, the cluster or the metadata service.
The NFS share is mounted by the kubelet on the node, not from the pod, so it needs no rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import cdk8s
from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks import contracts
from vllm_doks.k8s import kube
from vllm_doks.k8s.objects import api_object, struct
from vllm_doks.k8s.values import int_or_string

#: Label every namespace carries with its own name (Kubernetes sets it since 1.21).
NAMESPACE_NAME_LABEL = contracts.NAMESPACE_NAME_LABEL

#: Cilium's reserved identity of its Envoy, which forwards Gateway API traffic to backends.
CILIUM_INGRESS_ENTITY = contracts.CILIUM_INGRESS_ENTITY

#: Labels of the cluster's DNS pods (CoreDNS keeps the kube-dns labels, on DOKS too).
KUBE_DNS_LABELS = dict(contracts.KUBE_DNS_LABELS)

#: Ranges a download never needs: RFC 1918, shared address space (RFC 6598), link-local (the
#: metadata service) and, for IPv6, unique-local and link-local.
PRIVATE_IPV4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
PRIVATE_IPV6 = ("fc00::/7", "fe80::/10")


def _tcp(port: int) -> k8s.NetworkPolicyPort:
    return kube.NetworkPolicyPort(port=int_or_string(port), protocol="TCP")


class Selects(Protocol):
    """Anything whose pods :class:`Connections` can admit or be admitted from: a workload
    (cdk8s-plus' ``IPodSelector``)."""

    @property
    def connections(self) -> Connections: ...


@dataclass(frozen=True)
class Namespaces:
    """Peer: every pod of these namespaces (by their ``kubernetes.io/metadata.name`` label).
    None at all admits nothing, so ``allow_from(Namespaces(()))`` only isolates the pods."""

    names: tuple[str, ...]
    """Namespace names. No default."""


@dataclass(frozen=True)
class CiliumEntity:
    """Peer: one of Cilium's reserved identities, which only a CiliumNetworkPolicy can name."""

    name: str
    """The entity, e.g. ``ingress``. No default."""
    who: str
    """What the identity stands for, for the policy's description. No default."""


#: Cilium's Gateway API Envoy, the data path of DOKS's Gateway (see the module).
GATEWAY = CiliumEntity(CILIUM_INGRESS_ENTITY, "Cilium's Gateway API Envoy")

#: Who may connect: pods of namespaces, a Cilium entity, or another workload's pods (same
#: namespace).
Peer = Namespaces | CiliumEntity | Selects


class Connections:
    """Ingress to a workload's pods, one policy per :meth:`allow_from` (cdk8s-plus'
    ``pod.connections``). Policies add up; the first NetworkPolicy that selects the pods makes
    them deny every other source (on Cilium, any policy does)."""

    def __init__(self, scope: Construct, *, namespace: str, selector: Mapping[str, str]) -> None:
        self.scope = scope
        """The construct the workload's own policies are made in."""
        self.namespace = namespace
        """Namespace of the pods."""
        self.selector = dict(selector)
        """Labels that select the pods (and label the workload's own policies)."""
        self.isolated = False
        """Whether :meth:`isolate` restricted ingress to the pods."""

    def isolate(self, *, allow: Namespaces, port: int, id: str, name: str) -> cdk8s.ApiObject:
        """The workload's own NetworkPolicy: deny all ingress to the pods, except ``port``
        from the namespaces in ``allow``."""
        self.isolated = True
        return self.allow_from(allow, port=port, id=id, name=name)

    def allow_from(
        self,
        peer: Peer,
        *,
        port: int,
        id: str,
        name: str,
        owner: Selects | None = None,
        http_get: str | None = None,
    ) -> cdk8s.ApiObject:
        """Admit ``peer`` to ``port``/TCP of the pods: a NetworkPolicy ``name`` for namespaces
        and pods, a CiliumNetworkPolicy for a Cilium entity or with ``http_get`` (pods of
        ``peer``'s namespaces may send ``GET <http_get>`` and nothing else, an L7 rule).

        The policy belongs to ``owner`` (its construct, with its labels and id ``id``), by
        default this workload; a policy another workload needs (a router reaching a pool)
        belongs to that one, so the pool's own objects stay as they are."""
        scope = self.scope if owner is None else owner.connections.scope
        labels = self.selector if owner is None else owner.connections.selector
        # Only Cilium's own policy can name an entity or filter HTTP requests.
        if isinstance(peer, CiliumEntity) or http_get is not None:
            if isinstance(peer, CiliumEntity) and http_get is None:
                cilium_spec = self._entity_spec(peer, port)
            elif isinstance(peer, Namespaces) and http_get is not None:
                cilium_spec = self._http_get_spec(peer, port, http_get)
            else:
                raise ValueError("allow_from: http_get is for Namespaces peers only")
            # No typed binding: a raw object plus its spec.
            policy = api_object(
                cdk8s.ApiObject,
                scope,
                id,
                api_version=contracts.CILIUM_NETWORK_POLICY_API_VERSION,
                kind="CiliumNetworkPolicy",
                metadata=struct(
                    cdk8s.ApiObjectMetadata,
                    name=name,
                    namespace=self.namespace,
                    labels=dict(labels),
                ),
            )
            policy.add_json_patch(cdk8s.JsonPatch.add("/spec", cilium_spec))
            return policy
        if isinstance(peer, Namespaces):
            sources = [
                kube.NetworkPolicyPeer(
                    namespace_selector=kube.LabelSelector(match_labels={NAMESPACE_NAME_LABEL: ns}),
                )
                for ns in peer.names
            ]
        else:
            if peer.connections.namespace != self.namespace:
                raise ValueError(
                    f"allow_from: {peer.connections.scope.node.path} is in namespace "
                    f"{peer.connections.namespace!r}, not {self.namespace!r}"
                )
            sources = [
                kube.NetworkPolicyPeer(
                    pod_selector=kube.LabelSelector(match_labels=dict(peer.connections.selector)),
                )
            ]
        rules = [kube.NetworkPolicyIngressRule(from_=sources, ports=[_tcp(port)])]
        return kube.KubeNetworkPolicy(
            scope,
            id,
            metadata=kube.ObjectMeta(name=name, namespace=self.namespace, labels=dict(labels)),
            spec=kube.NetworkPolicySpec(
                pod_selector=kube.LabelSelector(match_labels=dict(self.selector)),
                policy_types=["Ingress"],
                # No source: a policy that only isolates (no rule at all, not an empty one).
                ingress=rules if sources else None,
            ),
        )

    def _entity_spec(self, peer: CiliumEntity, port: int) -> dict[str, Any]:
        return {
            "description": (
                f"{peer.who} (reserved identity '{peer.name}') may "
                f"reach port {port}/TCP of the selected pods; the pool's NetworkPolicy denies "
                "every other source."
            ),
            # Unqualified labels select pods in the policy's own namespace only.
            "endpointSelector": {"matchLabels": dict(self.selector)},
            "ingress": [
                {
                    "fromEntities": [peer.name],
                    "toPorts": [{"ports": [{"port": str(port), "protocol": "TCP"}]}],
                }
            ],
        }

    def _http_get_spec(self, peer: Namespaces, port: int, path: str) -> dict[str, Any]:
        """Pods of ``peer`` may send ``GET <path>`` to ``port`` and nothing else (Cilium's
        Envoy answers other requests with 403).

        For scrapers such as Prometheus: vLLM serves ``/tokenize``, ``/invocations``,
        ``/pooling``, ... without its API key (it checks ``/v1`` only), so admitting a
        namespace at L4 would open those too. Do not also admit these namespaces at L4 on the
        same port: Cilium adds an L4 allow to an L7 rule for the same peer by widening the L7
        rule to every request.
        """
        return {
            "description": (
                f"Pods of {', '.join(peer.names)} may GET {path} on port {port}/TCP of the "
                "selected pods, nothing else (vLLM serves its other non-/v1 paths without the "
                "API key)."
            ),
            "endpointSelector": {"matchLabels": dict(self.selector)},
            "ingress": [
                {
                    "fromEndpoints": [
                        {"matchLabels": {contracts.CILIUM_NAMESPACE_LABEL: ns}} for ns in peer.names
                    ],
                    "toPorts": [
                        {
                            "ports": [{"port": str(port), "protocol": "TCP"}],
                            "rules": {"http": [{"method": "GET", "path": path}]},
                        }
                    ],
                }
            ],
        }


def download_policy(
    scope: Construct,
    id: str,
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    restrict_egress: bool,
) -> k8s.KubeNetworkPolicy:
    """No ingress at all; egress DNS + HTTPS to public addresses (or anything, if not
    ``restrict_egress``)."""
    egress = None
    if restrict_egress:
        egress = [
            kube.NetworkPolicyEgressRule(
                to=[
                    kube.NetworkPolicyPeer(
                        namespace_selector=kube.LabelSelector(),
                        pod_selector=kube.LabelSelector(match_labels=dict(KUBE_DNS_LABELS)),
                    )
                ],
                ports=[
                    kube.NetworkPolicyPort(port=int_or_string(53), protocol="UDP"),
                    kube.NetworkPolicyPort(port=int_or_string(53), protocol="TCP"),
                ],
            ),
            kube.NetworkPolicyEgressRule(
                to=[
                    kube.NetworkPolicyPeer(
                        ip_block=kube.IpBlock(cidr="0.0.0.0/0", except_=list(PRIVATE_IPV4)),
                    ),
                    kube.NetworkPolicyPeer(
                        ip_block=kube.IpBlock(cidr="::/0", except_=list(PRIVATE_IPV6)),
                    ),
                ],
                ports=[_tcp(443)],
            ),
        ]
    return kube.KubeNetworkPolicy(
        scope,
        id,
        metadata=kube.ObjectMeta(name=name, namespace=namespace, labels=dict(labels)),
        spec=kube.NetworkPolicySpec(
            pod_selector=kube.LabelSelector(match_labels=dict(selector)),
            policy_types=["Ingress", "Egress"] if restrict_egress else ["Ingress"],
            egress=egress,
        ),
    )

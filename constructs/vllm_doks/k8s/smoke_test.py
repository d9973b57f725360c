"""SmokeTest: after apply, one authenticated chat completion through the Gateway, timed.

``kubectl apply`` and ``terraform apply`` end when the objects exist, not when the endpoint
answers. This Job closes that gap: it sends one ``/v1/chat/completions`` request for the pool's
model through the Gateway (the path clients use, API key included), retrying while nodes,
weights and vLLM come up, and reports the latency of the first answer in its log and its
termination message::

    kubectl -n vllm logs job/smoke-test-<hash>
    kubectl -n vllm get pods -l app=smoke-test \\
        -o jsonpath='{..state.terminated.message}'

Stack 2 via Terraform waits for it (condition ``Complete``) as it waits for the download, so
a green ``apply`` means the endpoint really answered.

Which address: a Gateway has no in-cluster DNS name of its own. Cilium (DOKS' Gateway API
implementation) serves each Gateway through a Service named ``cilium-gateway-<gateway name>``
in the Gateway's namespace (``ciliumGatewayPrefix = "cilium-gateway-"`` in cilium/cilium
``operator/pkg/model/translation/gateway-api/translator.go``), reachable from pods like any
Service. For another GatewayClass pass ``url``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdk8s_plus_28 import k8s
from constructs import Construct

from vllm_doks import contracts
from vllm_doks.cold_start import AFTER_APPLY_LABEL
from vllm_doks.k8s.gateway_endpoint import GatewayEndpoint
from vllm_doks.k8s.model_download import template_hash
from vllm_doks.k8s.network_policies import download_policy
from vllm_doks.k8s.pod_security import (
    SECRET_FILE_MODE,
    TMP_VOLUME,
    container_security_context,
    gpu_tolerations,
    node_pool_selector,
    pod_security_context,
    tmp_volume,
)
from vllm_doks.k8s.scripts import SMOKE_TEST, sh_command
from vllm_doks.k8s.suppressions import HIGH_UID_REASON, checkov_skip_annotations, image_skips
from vllm_doks.k8s.vllm_worker_pool import VllmWorkerPool
from vllm_doks.validation import Problems, check_int_range

#: Name prefix of the Service Cilium creates for a Gateway (see the module doc).
CILIUM_GATEWAY_SERVICE_PREFIX = contracts.CILIUM_GATEWAY_SERVICE_PREFIX
#: GatewayClass whose Service name we know; any other needs ``SmokeTestProps.url``.
CILIUM_GATEWAY_CLASS = "cilium"

#: Pod label of the smoke-test Job's pods, and the Job's own ``app`` label.
SMOKE_TEST_APP = "smoke-test"

_KEY_VOLUME = "api-key"
_KEY_DIR = "/var/run/secrets/vllm-api-key"
_KEY_FILE = "key"


@dataclass(frozen=True, kw_only=True)
class SmokeTestProps:
    """What to test and how long to wait for it."""

    endpoint: GatewayEndpoint
    """The Gateway the request goes through."""
    pool: VllmWorkerPool
    """The pool whose model the request names; its API key Secret, image and GPU node pool
    are reused (the image is already on those nodes)."""
    deadline_seconds: int = 1800
    """How long the Job keeps retrying before it fails, seconds: cover node provisioning,
    the download and the cold start. Default 1800."""
    path_prefix: str = "/v1"
    """Route prefix of the pool on the Gateway (as given to ``route_to``). Default ``/v1``."""
    url: str | None = None
    """The full chat-completions URL. Default ``None``: the Cilium Gateway Service's in-cluster
    address, ``http://cilium-gateway-<gateway>.<namespace>.svc:<http port><prefix>/chat/
    completions`` (only for the ``cilium`` GatewayClass)."""
    interval_seconds: int = 10
    """Pause between attempts, seconds. Default 10."""
    network_policy: bool = True
    """A NetworkPolicy denying all ingress to the Job's pod. Default ``True``."""
    ttl_seconds_after_finished: int | None = None
    """Delete the finished Job after this many seconds. Default ``None``: keep it, so its
    latency stays readable."""

    def problems(self) -> Problems:
        problems = Problems()
        check_int_range(problems, "deadline_seconds", self.deadline_seconds, 10, 86400)
        check_int_range(problems, "interval_seconds", self.interval_seconds, 1, 600)
        if self.ttl_seconds_after_finished is not None:
            check_int_range(
                problems, "ttl_seconds_after_finished", self.ttl_seconds_after_finished, 0
            )
        if self.url is not None:
            check_url(problems, "url", self.url)
        elif self.endpoint.props.gateway_class_name != CILIUM_GATEWAY_CLASS:
            problems.add(
                "url",
                None,
                f"must be given for GatewayClass {self.endpoint.props.gateway_class_name!r}: only "
                f"Cilium's Gateway Service name is known ({CILIUM_GATEWAY_SERVICE_PREFIX}"
                "<gateway name>)",
            )
        return problems


class SmokeTest(Construct):
    """A Job sending one authenticated chat completion through the Gateway; see the module doc.

    The Job's name carries a hash of its pod template (``smoke-test-<hash>``): a Job's template
    cannot change in place, so a changed model, URL or key gives a new Job that runs again.
    """

    def __init__(self, scope: Construct, id: str, props: SmokeTestProps) -> None:
        super().__init__(scope, id)
        problems = props.problems()
        problems.where = self.node.path
        problems.raise_if_any()
        pool = props.pool
        self.namespace = pool.namespace
        self.url = props.url or (
            f"http://{CILIUM_GATEWAY_SERVICE_PREFIX}{props.endpoint.gateway_name}."
            f"{props.endpoint.namespace}.svc:{props.endpoint.http_port}"
            f"{props.path_prefix.rstrip('/')}/chat/completions"
        )
        self.model = pool.served_model_name
        self.deadline_seconds = props.deadline_seconds

        mounts = [k8s.VolumeMount(name=TMP_VOLUME, mount_path="/tmp")]
        volumes = [tmp_volume()]
        key_file = ""
        if pool.api_key_secret_name is not None:
            key_file = f"{_KEY_DIR}/{_KEY_FILE}"
            mounts.append(k8s.VolumeMount(name=_KEY_VOLUME, mount_path=_KEY_DIR, read_only=True))
            volumes.append(
                k8s.Volume(
                    name=_KEY_VOLUME,
                    secret=k8s.SecretVolumeSource(
                        secret_name=pool.api_key_secret_name,
                        default_mode=SECRET_FILE_MODE,
                        items=[k8s.KeyToPath(key=pool.props.api_key_secret_key, path=_KEY_FILE)],
                    ),
                )
            )
        command = sh_command(
            SMOKE_TEST,
            self.url,
            self.model,
            str(props.deadline_seconds),
            str(props.interval_seconds),
            key_file,
        )
        node_pool = pool.gpu_node_pool_name
        labels = {"app": SMOKE_TEST_APP}
        pod_spec = k8s.PodSpec(
            restart_policy="Never",
            automount_service_account_token=False,
            enable_service_links=False,
            security_context=pod_security_context(),
            # On the GPU nodes, whose kubelets already pulled the vLLM image (curl is in it).
            node_selector=node_pool_selector(node_pool),
            tolerations=gpu_tolerations(pool.gpu_size),
            containers=[
                k8s.Container(
                    name="smoke-test",
                    image=pool.image,
                    image_pull_policy="IfNotPresent",
                    command=command,
                    env=[k8s.EnvVar(name="TMPDIR", value="/tmp")],
                    resources=k8s.ResourceRequirements(
                        requests={
                            "cpu": k8s.Quantity.from_string("50m"),
                            "memory": k8s.Quantity.from_string("64Mi"),
                        },
                        limits={
                            "cpu": k8s.Quantity.from_string("200m"),
                            "memory": k8s.Quantity.from_string("128Mi"),
                        },
                    ),
                    security_context=container_security_context(),
                    volume_mounts=mounts,
                )
            ],
            volumes=volumes,
        )
        spec = k8s.JobSpec(
            # One pod: the script retries itself; a second pod would only restart the clock.
            backoff_limit=0,
            active_deadline_seconds=props.deadline_seconds + 60,
            ttl_seconds_after_finished=props.ttl_seconds_after_finished,
            template=k8s.PodTemplateSpec(metadata=k8s.ObjectMeta(labels=labels), spec=pod_spec),
        )
        rendered = k8s.KubeJob.manifest(metadata=k8s.ObjectMeta(name=SMOKE_TEST_APP), spec=spec)
        # Named like the download Jobs: base name and the hash of the pod template.
        self.job_name = f"{SMOKE_TEST_APP}-{template_hash(rendered['spec']['template'])}"
        skips = [("CKV_K8S_40", HIGH_UID_REASON), *image_skips(pool.image)]
        self.job = k8s.KubeJob(
            self,
            "Job",
            metadata=k8s.ObjectMeta(
                name=self.job_name,
                namespace=self.namespace,
                labels={**labels, AFTER_APPLY_LABEL: "true"},
                annotations=checkov_skip_annotations(skips),
            ),
            spec=spec,
        )
        self.job.add_dependency(pool.deployment)
        # Nothing connects to the smoke test: deny all ingress. Egress stays open, as it must
        # reach the Gateway's address (which a NetworkPolicy cannot name).
        self.network_policy: k8s.KubeNetworkPolicy | None = None
        if props.network_policy:
            self.network_policy = download_policy(
                self,
                "NetworkPolicy",
                name=self.job_name,
                namespace=self.namespace,
                labels=labels,
                selector=labels,
                restrict_egress=False,
            )


def check_url(problems: Problems, field_name: str, value: object) -> bool:
    """Record a problem unless ``value`` is an http(s) URL without whitespace."""
    return problems.check(
        isinstance(value, str)
        and value.startswith(("http://", "https://"))
        and not any(c.isspace() for c in value),
        field_name,
        value,
        "must be an http:// or https:// URL of the chat completions endpoint",
    )

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

Canary: with ``canary=True`` the Job tests a canary pool of a rollout
(:class:`~vllm_doks.k8s.canary.CanarySplit`) before users see it: every request carries
``x-vllm-doks-canary: true``, which the route sends to the canary only whatever the weights,
and names the served model and, in one container each, every LoRA adapter of the pool. The
script stays the one above: curl reads the header from its default config file
(``$CURL_HOME/.curlrc``, projected from a pod annotation by a downward API volume). The Job is
``<pool>-smoke-test-<hash>``, the hash covering the pool's own pod template, so a changed
canary is tested again and a promotion checks the Job of the canary it promotes
(:mod:`vllm_doks.promotion`).

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
from vllm_doks.cold_start import AFTER_APPLY_LABEL, PROMOTION_GATE_LABEL
from vllm_doks.k8s import kube
from vllm_doks.k8s.canary import CANARY_HEADER, CANARY_HEADER_VALUE
from vllm_doks.k8s.gateway_endpoint import GatewayEndpoint
from vllm_doks.k8s.jobs import MAX_JOB_BASE_NAME, RunOnceJob, run_once_pod_spec, template_hash
from vllm_doks.k8s.names import dns_label
from vllm_doks.k8s.pod_security import (
    container_security_context,
    gpu_tolerations,
    node_pool_selector,
    resource_requirements,
    secret_files_volume,
    tmp_mount,
    tmp_volume,
)
from vllm_doks.k8s.scripts import SMOKE_TEST, sh_command
from vllm_doks.k8s.suppressions import HIGH_UID_REASON, image_skips
from vllm_doks.k8s.vllm_worker_pool import VllmWorkerPool
from vllm_doks.validation import Problems, check_dns_label, check_int_range

#: Name prefix of the Service Cilium creates for a Gateway (see the module doc).
CILIUM_GATEWAY_SERVICE_PREFIX = contracts.CILIUM_GATEWAY_SERVICE_PREFIX
#: GatewayClass whose Service name we know; any other needs ``SmokeTestProps.url``.
CILIUM_GATEWAY_CLASS = "cilium"

#: Pod label of the smoke-test Job's pods, and the Job's own ``app`` label.
SMOKE_TEST_APP = "smoke-test"

_KEY_VOLUME = "api-key"
_KEY_DIR = "/var/run/secrets/vllm-api-key"
_KEY_FILE = "key"
#: The Job's requests and limits: curl and a shell.
_REQUESTS = {"cpu": "50m", "memory": "64Mi"}
_LIMITS = {"cpu": "200m", "memory": "128Mi"}

#: Job label of a canary's smoke test: the canary pool's name (how a promotion finds it).
CANARY_SMOKE_TEST_LABEL = "vllm-doks.io/canary-smoke-test"
#: Pod annotation holding curl's config for a canary's smoke test (the canary header).
CURL_CONFIG_ANNOTATION = "vllm-doks.io/curl-config"
#: Pod annotation: hash of the canary pool's pod template (part of the Job's name).
CANARY_TEMPLATE_ANNOTATION = "vllm-doks.io/canary-pod-template"
_CURL_VOLUME = "curl-config"
_CURL_DIR = "/etc/vllm-doks/curl"


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
    canary: bool = False
    """``pool`` is the canary of a rollout: send ``x-vllm-doks-canary: true`` (the route then
    sends the request to the canary only; ``path_prefix`` is the stable pool's route), test the
    served model and every LoRA adapter of the pool (one container each), and name the Job
    ``<pool>-smoke-test-<hash>`` with the pool's pod template in the hash. Keep
    ``ttl_seconds_after_finished`` unset: a promotion checks that this Job succeeded.
    Default ``False``."""
    gates_promotion: bool = False
    """With ``canary``: this output promotes the canary. The Job (the same one, same name, as
    at the canary's steps) is then labelled ``vllm-doks.io/gates-promotion`` instead of
    ``vllm-doks.io/after-apply``, so Stack 2 via Terraform orders the routes after it (not it
    after everything). Default ``False``."""
    name: str | None = None
    """Base name of the Job (and its NetworkPolicy), at most 54 characters: the Job is
    ``<name>-<hash of its pod template>``. Default ``None``: ``smoke-test``, or
    ``<pool>-smoke-test`` for a ``canary``; the serving chart gives each further model's test
    ``<pool>-smoke-test``, so no two pools' tests share a name."""

    def problems(self) -> Problems:
        problems = Problems()
        check_int_range(problems, "deadline_seconds", self.deadline_seconds, 10, 86400)
        check_int_range(problems, "interval_seconds", self.interval_seconds, 1, 600)
        if self.name is not None:
            check_dns_label(problems, "name", self.name, max_len=MAX_JOB_BASE_NAME)
        if self.ttl_seconds_after_finished is not None:
            check_int_range(
                problems, "ttl_seconds_after_finished", self.ttl_seconds_after_finished, 0
            )
        if self.gates_promotion and not self.canary:
            problems.add(
                "gates_promotion", self.gates_promotion, "needs canary: only a canary is promoted"
            )
        if self.canary and self.ttl_seconds_after_finished is not None:
            problems.add(
                "ttl_seconds_after_finished",
                self.ttl_seconds_after_finished,
                "must be unset with canary: the promotion checks the finished Job, which a TTL "
                "would delete",
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
        problems.where = lambda: self.node.path
        problems.raise_if_any()
        pool = props.pool
        self.namespace = pool.namespace
        #: Name of the tested pool (its Deployment).
        self.pool_name = pool.deployment_name
        self.url = props.url or (
            f"http://{CILIUM_GATEWAY_SERVICE_PREFIX}{props.endpoint.gateway_name}."
            f"{props.endpoint.namespace}.svc:{props.endpoint.http_port}"
            f"{props.path_prefix.rstrip('/')}/chat/completions"
        )
        self.model = pool.served_model_name
        self.deadline_seconds = props.deadline_seconds
        #: Names the Job's requests send as ``"model"``: the served model (and, for a canary,
        #: every adapter of the pool), one container each.
        self.models: tuple[str, ...] = (self.model,)

        mounts = [tmp_mount()]
        volumes = [tmp_volume()]
        key_file = ""
        if pool.api_key_secret_name is not None:
            key_file = f"{_KEY_DIR}/{_KEY_FILE}"
            mounts.append(kube.VolumeMount(name=_KEY_VOLUME, mount_path=_KEY_DIR, read_only=True))
            secret_files = {pool.props.api_key_secret_key: _KEY_FILE}
            volumes.append(
                secret_files_volume(
                    _KEY_VOLUME, pool.api_key_secret_name, secret_files, optional=False
                )
            )
        container_env = [kube.EnvVar(name="TMPDIR", value="/tmp")]
        labels = {"app": SMOKE_TEST_APP}
        annotations: dict[str, str] | None = None
        base_name = SMOKE_TEST_APP
        if props.canary:
            lora = pool.props.lora
            self.models += tuple(a.name for a in lora.adapters) if lora is not None else ()
            # The header comes from curl's default config file, so the script (and every
            # non-canary smoke Job) stays as it is; a downward API file needs no extra object.
            container_env.append(kube.EnvVar(name=contracts.CURL_HOME_ENV, value=_CURL_DIR))
            mounts.append(kube.VolumeMount(name=_CURL_VOLUME, mount_path=_CURL_DIR, read_only=True))
            volumes.append(
                kube.Volume(
                    name=_CURL_VOLUME,
                    downward_api=kube.DownwardApiVolumeSource(
                        items=[
                            kube.DownwardApiVolumeFile(
                                path=contracts.CURL_DEFAULT_CONFIG_FILE,
                                field_ref=kube.ObjectFieldSelector(
                                    field_path=f"metadata.annotations['{CURL_CONFIG_ANNOTATION}']",
                                ),
                            )
                        ],
                    ),
                )
            )
            annotations = {
                CURL_CONFIG_ANNOTATION: f'header = "{CANARY_HEADER}: {CANARY_HEADER_VALUE}"\n',
                # A changed canary (image, arguments, model) is a new Job that runs again.
                CANARY_TEMPLATE_ANNOTATION: template_hash(
                    pool.deployment.to_json()["spec"]["template"]
                ),
            }
            labels = {**labels, CANARY_SMOKE_TEST_LABEL: pool.deployment_name}
            base_name = dns_label(f"{pool.deployment_name}-{SMOKE_TEST_APP}", MAX_JOB_BASE_NAME)
        if props.name is not None:
            base_name = props.name

        def container(name: str, model: str) -> k8s.Container:
            return kube.Container(
                name=name,
                image=pool.image,
                image_pull_policy="IfNotPresent",
                command=sh_command(
                    SMOKE_TEST,
                    self.url,
                    model,
                    str(props.deadline_seconds),
                    str(props.interval_seconds),
                    key_file,
                ),
                env=container_env,
                resources=resource_requirements(_REQUESTS, _LIMITS),
                security_context=container_security_context(),
                volume_mounts=mounts,
            )

        node_pool = pool.gpu_node_pool_name
        pod_spec = run_once_pod_spec(
            # On the GPU nodes, whose kubelets already pulled the vLLM image (curl is in it).
            node_selector=node_pool_selector(node_pool),
            tolerations=gpu_tolerations(pool.gpu_size),
            # One container per name, in parallel: the pod (and the Job) succeeds only if each
            # of them got its completion.
            containers=[
                container("smoke-test" if i == 0 else f"lora-{i - 1}", model)
                for i, model in enumerate(self.models)
            ],
            volumes=volumes,
        )
        spec = kube.JobSpec(
            # One pod: the script retries itself; a second pod would only restart the clock.
            backoff_limit=0,
            active_deadline_seconds=props.deadline_seconds + 60,
            ttl_seconds_after_finished=props.ttl_seconds_after_finished,
            template=kube.PodTemplateSpec(
                metadata=kube.ObjectMeta(labels=labels, annotations=annotations),
                spec=pod_spec,
            ),
        )
        # Named like the download Jobs: base name and the hash of the pod template. Nothing
        # connects to the smoke test: its policy denies all ingress. Egress stays open, as it
        # must reach the Gateway's address (which a NetworkPolicy cannot name).
        run_once = RunOnceJob(
            self,
            base_name=base_name,
            namespace=self.namespace,
            labels=labels,
            job_labels={
                (PROMOTION_GATE_LABEL if props.gates_promotion else AFTER_APPLY_LABEL): "true"
            },
            spec=spec,
            skips=[("CKV_K8S_40", HIGH_UID_REASON), *image_skips(pool.image)],
            network_policy=props.network_policy,
            restrict_egress=False,
        )
        self.job_name = run_once.name
        self.job = run_once.job
        self.job.add_dependency(pool.deployment)
        self.network_policy = run_once.network_policy


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

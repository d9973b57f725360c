"""ModelDownload: one model on an NfsModelStore, and the Job that puts it there."""

from __future__ import annotations

from typing import TYPE_CHECKING

from constructs import Construct

from vllm_doks import contracts
from vllm_doks.gpu_catalog import GpuSize
from vllm_doks.k8s import kube
from vllm_doks.k8s.jobs import RunOnceJob, run_once_pod_spec
from vllm_doks.k8s.names import COMPLETION_MARKER, model_name_from_id
from vllm_doks.k8s.pod_security import (
    MODELS_VOLUME,
    container_security_context,
    env,
    gpu_tolerations,
    models_volume,
    node_pool_selector,
    optional_secret_file_volume,
    resource_requirements,
    secret_files_volume,
    tmp_mount,
    tmp_volume,
)
from vllm_doks.k8s.scripts import DOWNLOAD_MODEL, FETCH_MODEL, script_text, sh_command
from vllm_doks.k8s.suppressions import HIGH_UID_REASON, image_skips
from vllm_doks.weights import SpacesSource

if TYPE_CHECKING:
    from vllm_doks.k8s.nfs_model_store import NfsModelStore

#: A download holding the lock bumps its heartbeat this often (seconds)...
LOCK_HEARTBEAT_SECONDS = 15
#: ...and a waiter breaks a lock whose heartbeat stood still this long (seconds).
LOCK_STALE_SECONDS = 120
#: How often a waiting downloader looks at the lock again (seconds).
LOCK_POLL_SECONDS = 10

#: Volume and directory of the Hugging Face token file (from the optional Secret).
HF_TOKEN_VOLUME = "hf-token"
HF_TOKEN_DIR = "/var/run/secrets/huggingface"
HF_TOKEN_FILE = "token"

#: Volume and directory of the Spaces key pair (from the source's Secret), one file per key.
SPACES_CREDENTIALS_VOLUME = "spaces-credentials"
SPACES_CREDENTIALS_DIR = "/var/run/secrets/spaces"

#: Pod label naming the download (the Job's base name, without the template hash), so its
#: NetworkPolicy selects its pods only.
DOWNLOAD_JOB_LABEL = "vllm-doks.io/download-job"

#: ``app`` label of every download Job and its pods.
DOWNLOAD_APP = "model-download"


class ModelDownload(Construct):
    """A model stored in ``<mount_path>/<model name>`` of an :class:`NfsModelStore`.

    Create it with :meth:`NfsModelStore.add_model`. It renders a Job that downloads the model
    unless it is already complete: the Job exits at once when the completion marker exists,
    takes a lock on the directory so concurrent Jobs never download twice, checks every file
    against the hub's hashes (LFS sha256, git blob SHA-1) and writes the marker only after
    all of them matched; a mismatch fails the Job attempt. Pods that serve the model wait for
    that marker. With a pinned ``revision`` the directory is ``<model name>-<commit[:12]>``,
    so a new revision never mixes with the files of the old one. With a ``source``
    (:class:`~vllm_doks.weights.SpacesSource`) the files come from a Spaces bucket instead,
    checked against the sha256 manifest uploaded beside them, with the same lock and marker.

    The Job is named ``<job_name>-<hash>``, the hash of its pod template (model id, image,
    node pool, token Secret, ...). A Job's template is immutable, so re-applying a changed one
    under the same name fails ("spec.template: field is immutable"); with the hash, a change
    (another model, a fixed typo, a new image) is a new Job, and the old one is never patched:
    it finishes or is deleted after ``download_ttl_seconds_after_finished``, and the synth
    lists it among the objects to delete.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        store: NfsModelStore,
        model_id: str,
        job_name: str,
        node_pool_name: str | None,
        gpu_size: GpuSize,
        hf_token_secret_name: str | None,
        hf_token_secret_key: str,
        max_workers: int,
        directory: str | None = None,
        revision: str | None = None,
        source: SpacesSource | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.store = store
        self.model_id = model_id
        self.model_name = model_name_from_id(model_id)
        #: The pinned commit, or ``None`` for the hub's default branch at download time.
        self.revision = revision
        #: The Spaces bucket the files come from, or ``None`` for the Hugging Face Hub.
        self.source = source
        # ``directory``: a path under the mount other than the model's name (LoRA adapters
        # go to ``lora/<owner>--<repo>``, see vllm_doks.k8s.lora); same script, lock and marker.
        # A pinned revision gets its own directory, so revisions never mix.
        base = directory or self.model_name
        if revision is not None:
            base = f"{base}-{revision[:12]}"
        self.model_dir = f"{store.mount_path.rstrip('/')}/{base}"
        self.marker_path = f"{self.model_dir}/{COMPLETION_MARKER}"
        #: Base name given to add_model: the NetworkPolicy's name and the pods' label value.
        self.base_name = job_name
        self.namespace = store.namespace
        self.max_workers = max_workers
        self.node_pool_name = node_pool_name
        self.gpu_size = gpu_size
        props = store.props
        #: The store's download image, or (unset) the vLLM image of the GPU size the Job
        #: runs on: the same image the vLLM pods there pull next (CUDA or ROCm build).
        self.image = (
            props.download_image if props.download_image is not None else gpu_size.vllm_image
        )

        container_env = [
            # The image's user has no home directory; point everything at the /tmp volume.
            env("HOME", "/tmp"),
            env("HF_HOME", "/tmp/hf_home"),
        ]
        mounts = [
            kube.VolumeMount(name=MODELS_VOLUME, mount_path=store.mount_path),
            tmp_mount(),
        ]
        volumes = [models_volume(store.pvc_name, read_only=False), tmp_volume()]
        if source is not None:
            # The key pair as files from a Secret the user creates (never a value here); it
            # may be missing at first: the download then fails with the kubectl command that
            # creates it, and a later attempt finds it.
            container_env.extend(
                [
                    env("SPACES_BUCKET_URL", source.bucket_url),
                    env("SPACES_REGION", source.region),
                    env("SPACES_PREFIX", source.prefix),
                    env("SPACES_CREDENTIALS_DIR", SPACES_CREDENTIALS_DIR),
                    env("SPACES_SECRET_HINT", source.secret_command(store.namespace)),
                ]
            )
            mounts.append(
                kube.VolumeMount(
                    name=SPACES_CREDENTIALS_VOLUME,
                    mount_path=SPACES_CREDENTIALS_DIR,
                    read_only=True,
                )
            )
            volumes.append(
                secret_files_volume(
                    SPACES_CREDENTIALS_VOLUME,
                    source.credentials_secret,
                    {
                        contracts.SPACES_ACCESS_KEY_ID_KEY: "access_key_id",
                        contracts.SPACES_SECRET_ACCESS_KEY_KEY: "secret_access_key",
                    },
                    optional=True,
                )
            )
        elif hf_token_secret_name is not None:
            # The token as a file, not an environment variable: huggingface_hub reads
            # HF_TOKEN_PATH when HF_TOKEN is unset, and a file stays out of the process
            # environment (inherited by every child, shown in crash reports). The Secret may
            # be absent: public models need none, and huggingface_hub then finds no file.
            container_env.append(env("HF_TOKEN_PATH", f"{HF_TOKEN_DIR}/{HF_TOKEN_FILE}"))
            mounts.append(
                kube.VolumeMount(name=HF_TOKEN_VOLUME, mount_path=HF_TOKEN_DIR, read_only=True)
            )
            volumes.append(
                optional_secret_file_volume(
                    HF_TOKEN_VOLUME, hf_token_secret_name, hf_token_secret_key, HF_TOKEN_FILE
                )
            )

        labels = {"app": DOWNLOAD_APP}
        pod_labels = {**labels, DOWNLOAD_JOB_LABEL: job_name}
        requests = {"cpu": props.download_cpu_request, "memory": props.download_memory_request}
        limits = {
            name: limit
            for name, limit in (
                ("cpu", props.download_cpu_limit),
                ("memory", props.download_memory_limit),
            )
            if limit is not None
        }
        skips = [("CKV_K8S_40", HIGH_UID_REASON), *image_skips(self.image)]
        command = sh_command(
            DOWNLOAD_MODEL,
            model_id,
            self.model_dir,
            str(max_workers),
            str(LOCK_STALE_SECONDS),
            str(LOCK_HEARTBEAT_SECONDS),
            str(LOCK_POLL_SECONDS),
            revision or "",
            script_text(FETCH_MODEL),
        )
        template = kube.PodTemplateSpec(
            metadata=kube.ObjectMeta(labels=pod_labels),
            spec=run_once_pod_spec(
                tolerations=gpu_tolerations(gpu_size) if node_pool_name else None,
                node_selector=node_pool_selector(node_pool_name) if node_pool_name else None,
                containers=[
                    kube.Container(
                        name="download",
                        image=self.image,
                        image_pull_policy="IfNotPresent",
                        command=command,
                        env=container_env,
                        resources=resource_requirements(requests, limits),
                        security_context=container_security_context(),
                        volume_mounts=mounts,
                    )
                ],
                volumes=volumes,
            ),
        )
        run_once = RunOnceJob(
            self,
            base_name=job_name,
            namespace=self.namespace,
            labels=labels,
            spec=kube.JobSpec(
                backoff_limit=props.download_backoff_limit,
                ttl_seconds_after_finished=props.download_ttl_seconds_after_finished,
                template=template,
            ),
            skips=skips,
            network_policy=props.download_network_policy,
            network_policy_name=job_name,
            restrict_egress=props.download_egress_restricted,
        )
        #: Name of the Job: the base name and the hash of what it downloads and how.
        self.job_name = run_once.name
        self.job = run_once.job
        self.job.add_dependency(store.persistent_volume_claim)
        self.network_policy = run_once.network_policy

    @property
    def wait_hint(self) -> str:
        """How the pods waiting for this download name it in their log: by model id and a
        label query, not by the Job's name, which moves with the model's place in the chart
        and with its template hash; in a serving pod's template it would roll the pods
        whenever that happens (e.g. when a canary entry becomes the only model)."""
        return (
            f"the download of {self.model_id} "
            f"(kubectl -n {self.namespace} get jobs -l app={DOWNLOAD_APP})"
        )

    @property
    def pvc_name(self) -> str:
        """Claim that mounts the store holding this model."""
        return self.store.pvc_name

    @property
    def mount_path(self) -> str:
        """Where the store is mounted in pods (the model is in a subdirectory of it)."""
        return self.store.mount_path

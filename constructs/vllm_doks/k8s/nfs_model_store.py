"""NfsModelStore: a Managed NFS share, mounted in one namespace, holding model weights."""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from constructs import Construct

from vllm_doks.gpu_catalog import GpuSize, resolve_gpu_size
from vllm_doks.handoff import GpuPoolRef, node_pool_and_size
from vllm_doks.k8s import kube
from vllm_doks.k8s.checks import (
    check_absolute_path,
    check_host,
    check_image,
    check_quantity,
    check_request_within_limit,
    check_secret_key,
)
from vllm_doks.k8s.jobs import MAX_JOB_BASE_NAME
from vllm_doks.k8s.model_download import ModelDownload
from vllm_doks.k8s.names import (
    DEFAULT_NAMESPACE,
    check_model_id,
    dns_label,
    model_name_from_id,
)
from vllm_doks.k8s.values import quantity
from vllm_doks.props import takes_props
from vllm_doks.validation import (
    Problems,
    check_dns_label,
    check_dns_subdomain,
    check_int_range,
)
from vllm_doks.weights import SpacesSource, check_revision

#: Base name of the first model's download Job (the seed's Job name); the Job itself is
#: ``model-download-<hash of its pod template>``, see :class:`ModelDownload`.
FIRST_DOWNLOAD_JOB_NAME = "model-download"

#: PersistentVolume labels that bind the store's claim to its volume: together they name the
#: instance (namespace) and the store, so no other store's claim can select the volume.
STORE_NAMESPACE_LABEL = "vllm-doks.io/store-namespace"
STORE_NAME_LABEL = "vllm-doks.io/store"


@dataclass(frozen=True, kw_only=True)
class NfsModelStoreProps:
    """Props of :class:`NfsModelStore`."""

    nfs_server: str
    """IP address (or DNS name) of the NFS server; Stack 1's ``nfs_host`` output. Required."""
    nfs_path: str
    """Exported path to mount; Stack 1's ``nfs_mount_path`` output. Required."""
    capacity_gi: int
    """Size of the share in GiB, stated on the PersistentVolume and requested by the claim
    (Stack 1's ``nfs_size_gb``). NFS does not enforce it; binding compares it. Required."""
    namespace: str = DEFAULT_NAMESPACE
    """Namespace of the claim and the download Jobs. Default ``"vllm"``."""
    name: str = "vllm-models"
    """Base name: the claim is ``<name>-pvc`` and the volume ``<namespace>.<name>-pv``. A
    PersistentVolume is cluster-scoped, so its name carries the namespace: two instances
    (namespaces) in one cluster each get their own volume, and each claim binds to its own.
    Default ``"vllm-models"`` (the seed's ``vllm-models-pvc``; the volume of the default
    namespace is ``vllm.vllm-models-pv``)."""
    mount_path: str = "/models"
    """Where pods mount the share; each model lives in ``<mount_path>/<model name>``.
    Default ``"/models"``."""
    download_image: str | None = None
    """Image of the download Jobs; needs ``python3`` with ``huggingface_hub`` (the standard
    library alone for a model from a Spaces bucket). Default
    ``None``: the pinned vLLM image of each model's GPU size (``add_model(gpu_size=...)``),
    ``vllm/vllm-openai:v0.18.0`` for NVIDIA sizes and ``vllm/vllm-openai-rocm:v0.18.0`` for
    AMD ones. Both have ``python3`` and ``huggingface_hub``, so nothing is pip-installed at run
    time, and the download pulls onto the GPU node the image the vLLM pod there needs."""
    download_max_workers: int = 4
    """Parallel file downloads per model (``snapshot_download(max_workers=...)``). Default 4:
    many concurrent writers contend on NFS rather than speed it up."""
    download_backoff_limit: int = 6
    """Retries of a failed download pod (each resumes where the last stopped). Default 6,
    Kubernetes' own default, stated explicitly."""
    download_ttl_seconds_after_finished: int = 300
    """Seconds a finished download Job (and its logs) is kept. Default 300 (the seed's)."""
    download_cpu_request: str = "500m"
    """CPU request of a download pod. Default ``"500m"``."""
    download_memory_request: str = "1Gi"
    """Memory request of a download pod. Default ``"1Gi"``."""
    download_cpu_limit: str | None = "4"
    """CPU limit of a download pod. Default ``"4"``: enough for the parallel file transfers, and
    a bound on what a download can take from the vLLM pods on the same GPU node. ``None`` for
    no limit."""
    download_memory_limit: str | None = "8Gi"
    """Memory limit of a download pod. Default ``"8Gi"``: downloads stream to the share, so
    this only bounds a runaway; an OOM-killed attempt is retried and resumes. ``None`` for no
    limit."""
    download_network_policy: bool = True
    """Give each download Job a NetworkPolicy that denies all ingress to its pods (nothing
    connects to a download). Default ``True``."""
    download_egress_restricted: bool = True
    """With ``download_network_policy``, also limit the download's egress to DNS (the
    cluster's ``k8s-app: kube-dns`` pods) and HTTPS to public addresses, keeping the VPC, the
    cluster and the metadata service out of reach. Default ``True``; ``False`` if downloads
    need a proxy or mirror at a private address."""

    def problems(self) -> Problems:
        problems = Problems()
        check_host(problems, "nfs_server", self.nfs_server)
        check_absolute_path(problems, "nfs_path", self.nfs_path)
        check_int_range(problems, "capacity_gi", self.capacity_gi, 1)
        check_dns_label(problems, "namespace", self.namespace)
        check_dns_label(problems, "name", self.name, max_len=63 - len("-pvc"))
        check_absolute_path(problems, "mount_path", self.mount_path)
        if self.download_image is not None:
            check_image(problems, "download_image", self.download_image)
        check_int_range(problems, "download_max_workers", self.download_max_workers, 1, 64)
        check_int_range(problems, "download_backoff_limit", self.download_backoff_limit, 0)
        check_int_range(
            problems,
            "download_ttl_seconds_after_finished",
            self.download_ttl_seconds_after_finished,
            0,
        )
        for resource in ("cpu", "memory"):
            request_field, limit_field = (
                f"download_{resource}_request",
                f"download_{resource}_limit",
            )
            request, limit = getattr(self, request_field), getattr(self, limit_field)
            ok = check_quantity(problems, request_field, request)
            if limit is not None and check_quantity(problems, limit_field, limit) and ok:
                check_request_within_limit(problems, request_field, request, limit_field, limit)
        for field_name in ("download_network_policy", "download_egress_restricted"):
            value = getattr(self, field_name)
            problems.check(isinstance(value, bool), field_name, value, "must be True or False")
        return problems


@takes_props(NfsModelStoreProps)
class NfsModelStore(Construct):
    """Model weights on a Managed NFS share, available to the pods of one namespace.

    Creates a cluster-scoped PersistentVolume pointing at the share (ReadWriteMany, ``Retain``
    so deleting the chart never touches the weights) and a claim bound to exactly that volume
    by label selector, with ``storageClassName: ""`` so no provisioner creates another volume.
    Each :meth:`add_model` adds a download Job for one model into its own directory::

        store = NfsModelStore(chart, "Models", NfsModelStoreProps(
            nfs_server="10.200.0.5", nfs_path="/123/abc", capacity_gi=1000))
        qwen = store.add_model("Qwen/Qwen2.5-0.5B-Instruct", node_pool_name="gpu-pool")
    """

    def __init__(self, scope: Construct, id: str, props: NfsModelStoreProps) -> None:
        super().__init__(scope, id)
        props.problems().raise_if_any(where=lambda: self.node.path)

        self.props = props
        self.namespace = props.namespace
        self.mount_path = props.mount_path.rstrip("/") or "/"
        # Namespaces hold no dots, so "<namespace>." makes the name unique per instance
        # while staying a valid DNS subdomain.
        self.pv_name = f"{props.namespace}.{props.name}-pv"
        self.pvc_name = f"{props.name}-pvc"
        self._models: list[ModelDownload] = []

        capacity = {"storage": quantity(f"{props.capacity_gi}Gi")}
        binding_labels = {STORE_NAMESPACE_LABEL: props.namespace, STORE_NAME_LABEL: props.name}

        self.persistent_volume = kube.KubePersistentVolume(
            self,
            "PersistentVolume",
            metadata=kube.ObjectMeta(name=self.pv_name, labels=binding_labels),
            spec=kube.PersistentVolumeSpec(
                capacity=capacity,
                access_modes=["ReadWriteMany"],
                persistent_volume_reclaim_policy="Retain",
                # No storageClassName: a volume without one is in the class "" that the claim
                # asks for, and the API server drops an empty one, so emitting "" would make
                # every `kubectl apply` of an unchanged output patch the volume again.
                nfs=kube.NfsVolumeSource(server=props.nfs_server, path=props.nfs_path),
            ),
        )
        # cdk8s copies a Chart's namespace onto every object that sets none, this
        # cluster-scoped one included; kubectl then rejects or misfiles it.
        if cdk8s.Chart.of(self).namespace:
            self.persistent_volume.add_json_patch(cdk8s.JsonPatch.remove("/metadata/namespace"))

        self.persistent_volume_claim = kube.KubePersistentVolumeClaim(
            self,
            "PersistentVolumeClaim",
            metadata=kube.ObjectMeta(name=self.pvc_name, namespace=self.namespace),
            spec=kube.PersistentVolumeClaimSpec(
                access_modes=["ReadWriteMany"],
                storage_class_name="",
                resources=kube.ResourceRequirements(requests=capacity),
                selector=kube.LabelSelector(match_labels=binding_labels),
            ),
        )
        # The claim is useless without its volume; apply the volume first.
        self.persistent_volume_claim.add_dependency(self.persistent_volume)

    @property
    def models(self) -> tuple[ModelDownload, ...]:
        """The models added so far, in order."""
        return tuple(self._models)

    def add_model(
        self,
        model_id: str,
        *,
        job_name: str | None = None,
        node_pool_name: str | None = None,
        gpu_size: str | GpuSize | None = None,
        gpu_pool: GpuPoolRef | None = None,
        hf_token_secret_name: str | None = "hf-token",
        hf_token_secret_key: str = "HF_TOKEN",
        max_workers: int | None = None,
        revision: str | None = None,
        source: SpacesSource | None = None,
    ) -> ModelDownload:
        """Download ``model_id`` from Hugging Face into ``<mount_path>/<model name>``, once.

        :param model_id: Hugging Face id, e.g. ``"Qwen/Qwen2.5-0.5B-Instruct"``.
        :param job_name: base name of the download Job (at most 54 characters); the Job is
            ``<job_name>-<hash of its pod template>``, so a changed model gets a new Job
            instead of patching an immutable one. Default: ``"model-download"`` for the first
            model (the seed's), ``"model-download-<model name>"`` for later ones.
        :param node_pool_name: run the download on this node pool (node selector plus the GPU
            toleration), as the seed does, so the image it pulls is the one vLLM needs there.
            Default: anywhere in the cluster.
        :param gpu_size: GPU size of that node pool (a catalogue slug or a
            :class:`~vllm_doks.gpu_catalog.GpuSize`): the Job tolerates that vendor's GPU taint
            only (``amd.com/gpu`` for AMD sizes) and, unless the store sets
            ``download_image``, runs that size's vLLM image (CUDA or ROCm). Pass the same size
            as the :class:`VllmWorkerPool` serving the model. Default: ``gpu_pool``'s size, else
            ``"gpu-h100x1-80gb"``.
        :param gpu_pool: the node pool as one value, its name and size (Stack 1's hand-off
            ``gpu_pool``), instead of ``node_pool_name`` and ``gpu_size``; give the same value
            to the :class:`VllmWorkerPool` serving the model. Default ``None``.
        :param hf_token_secret_name: Secret holding a Hugging Face token for gated models; it
            may be absent (public models need none). ``None`` to not look for one.
        :param hf_token_secret_key: key of the token in that Secret. Default ``"HF_TOKEN"``.
        :param max_workers: parallel file downloads; default the store's
            ``download_max_workers``.
        :param revision: the commit (40 hex digits) to download, so every cluster serves the
            same weights; its files are verified against the hub's hashes either way.
            Default ``None``: the hub's default branch at download time.
        :param source: download from this DigitalOcean Spaces bucket instead of the hub (see
            :class:`~vllm_doks.weights.SpacesSource`): the files under its prefix, verified
            against the manifest beside them (whose revision must be ``revision`` when that is
            set). Default ``None``: the Hugging Face Hub.
        """
        problems = Problems(where=lambda: f"{self.node.path}.add_model({model_id!r})")
        if check_model_id(problems, "model_id", model_id):
            for existing in self._models:
                if existing.model_id == model_id:
                    problems.add("model_id", model_id, "was already added to this store")
                elif existing.model_name == model_name_from_id(model_id):
                    problems.add(
                        "model_id",
                        model_id,
                        f"has the same directory name as {existing.model_id!r} "
                        f"({existing.model_dir}); models need distinct names",
                    )
        if job_name is None and not problems:
            job_name = (
                FIRST_DOWNLOAD_JOB_NAME
                if not self._models
                else dns_label(
                    f"{FIRST_DOWNLOAD_JOB_NAME}-{model_name_from_id(model_id)}",
                    MAX_JOB_BASE_NAME,
                )
            )
        if job_name is not None:
            check_dns_label(problems, "job_name", job_name, max_len=MAX_JOB_BASE_NAME)
            if any(m.base_name == job_name for m in self._models):
                problems.add("job_name", job_name, "is already the Job of another model")
        node_pool_name, size_value = node_pool_and_size(
            problems, gpu_pool, name=("node_pool_name", node_pool_name), size=("gpu_size", gpu_size)
        )
        if node_pool_name is not None:
            check_dns_label(problems, "node_pool_name", node_pool_name)
        size = resolve_gpu_size(problems, "gpu_size", size_value, escape="gpu_size=")
        if hf_token_secret_name is not None:
            check_dns_subdomain(problems, "hf_token_secret_name", hf_token_secret_name)
            check_secret_key(problems, "hf_token_secret_key", hf_token_secret_key)
        if max_workers is not None:
            check_int_range(problems, "max_workers", max_workers, 1, 64)
        if revision is not None:
            check_revision(problems, "revision", revision)
        if source is not None and problems.check(
            isinstance(source, SpacesSource), "source", source, "must be a SpacesSource"
        ):
            problems.extend(source.problems("source").items)
        problems.raise_if_any()
        assert job_name is not None
        assert size is not None

        model = ModelDownload(
            self,
            # Job names are validated unique; ids derived from model ids could collide.
            f"Model-{job_name}",
            store=self,
            model_id=model_id,
            job_name=job_name,
            node_pool_name=node_pool_name,
            gpu_size=size,
            hf_token_secret_name=hf_token_secret_name,
            hf_token_secret_key=hf_token_secret_key,
            max_workers=(
                max_workers if max_workers is not None else self.props.download_max_workers
            ),
            revision=revision,
            source=source,
        )
        self._models.append(model)
        return model

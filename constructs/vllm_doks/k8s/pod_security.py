"""Pod building blocks shared by the download Job and the vLLM Deployment.

Both run the same vLLM image as the same non-root user on the same GPU nodes, so they share
one definition of "how our pods are locked down and where they are scheduled".

The structs are made with :func:`~vllm_doks.k8s.objects.struct` (no runtime typeguard; see
:mod:`vllm_doks.k8s.objects`), and the factories are cached (``@cache``): a struct is an
immutable value once made, so one per distinct argument serves every pod in the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from cdk8s_plus_28 import k8s

from vllm_doks.gpu_catalog import GpuSize
from vllm_doks.k8s import kube
from vllm_doks.k8s.names import GPU_RESOURCE, NODE_POOL_LABEL, NON_ROOT_ID
from vllm_doks.k8s.values import quantity

#: Volume names inside our pod specs.
MODELS_VOLUME = "models"
TMP_VOLUME = "tmp"
SHM_VOLUME = "shm"


@cache
def pod_security_context(supplemental_groups: tuple[int, ...] = ()) -> k8s.PodSecurityContext:
    """Non-root uid/gid 1000 with the runtime's default seccomp profile.

    ``fsGroupChangePolicy: OnRootMismatch`` keeps the kubelet from walking every file of a
    volume to re-own it on each start (the ``Always`` default) when the root already matches.
    ``supplemental_groups`` adds groups to every container's processes (e.g. the host group
    that owns AMD's GPU device nodes).
    """
    return kube.PodSecurityContext(
        supplemental_groups=list(supplemental_groups) or None,
        run_as_non_root=True,
        run_as_user=NON_ROOT_ID,
        run_as_group=NON_ROOT_ID,
        fs_group=NON_ROOT_ID,
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=kube.SeccompProfile(type="RuntimeDefault"),
    )


@cache
def container_security_context() -> k8s.SecurityContext:
    """No privilege escalation, no capabilities, read-only root filesystem.

    Every path our containers write to is an explicit volume (``/tmp``, ``/dev/shm``,
    ``/models`` for the downloader), which is what makes the read-only root possible.
    """
    return kube.SecurityContext(
        allow_privilege_escalation=False,
        capabilities=kube.Capabilities(drop=["ALL"]),
        read_only_root_filesystem=True,
    )


def gpu_tolerations(size: GpuSize | None = None) -> list[k8s.Toleration]:
    """DOKS taints GPU nodes with ``<vendor>.com/gpu:NoSchedule`` (``nvidia.com/gpu`` or
    ``amd.com/gpu``); only our pods may land there. Without ``size``, NVIDIA's (the default
    H100 size's). Only the size's own vendor is tolerated, so an AMD pod never tolerates
    NVIDIA's taint and the reverse."""
    if size is None:
        return [kube.Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")]
    t = size.toleration()
    return [kube.Toleration(key=t["key"], operator=t["operator"], effect=t["effect"])]


def node_pool_selector(node_pool_name: str) -> dict[str, str]:
    return {NODE_POOL_LABEL: node_pool_name}


@cache
def tmp_volume() -> k8s.Volume:
    """Writable scratch for ``HOME`` (caches of vLLM, Triton, torch.compile, Hugging Face)."""
    return kube.Volume(name=TMP_VOLUME, empty_dir=kube.EmptyDirVolumeSource())


@cache
def tmp_mount() -> k8s.VolumeMount:
    """:func:`tmp_volume` mounted at ``/tmp``."""
    return kube.VolumeMount(name=TMP_VOLUME, mount_path="/tmp")


@cache
def models_volume(claim_name: str, *, read_only: bool) -> k8s.Volume:
    return kube.Volume(
        name=MODELS_VOLUME,
        persistent_volume_claim=kube.PersistentVolumeClaimVolumeSource(
            # false is the API's default and is not stored: emitting it would make every
            # `kubectl apply` of an unchanged output patch the object again.
            claim_name=claim_name,
            read_only=read_only or None,
        ),
    )


@cache
def env(name: str, value: str) -> k8s.EnvVar:
    return kube.EnvVar(name=name, value=value)


def optional_secret_env(name: str, secret_name: str, secret_key: str) -> k8s.EnvVar:
    """An env var from a Secret that may not exist: the pod starts either way."""
    return _secret_env(name, secret_name, secret_key, optional=True)


def required_secret_env(name: str, secret_name: str, secret_key: str) -> k8s.EnvVar:
    """An env var from a Secret that must exist.

    ``optional: false`` on purpose: without the Secret (or its key) the container does not
    start and the pod shows ``CreateContainerConfigError`` naming the Secret, instead of
    starting without the value, which for an API key would mean an open endpoint.
    """
    return _secret_env(name, secret_name, secret_key, optional=False)


@cache
def _secret_env(name: str, secret_name: str, secret_key: str, *, optional: bool) -> k8s.EnvVar:
    selector = kube.SecretKeySelector(name=secret_name, key=secret_key, optional=optional)
    return kube.EnvVar(name=name, value_from=kube.EnvVarSource(secret_key_ref=selector))


#: Owner and group may read, nobody else: the kubelet gives secret volumes the pod's
#: ``fsGroup`` (1000) as group, which is the group our containers run as.
SECRET_FILE_MODE = 0o440


@cache
def optional_secret_file_volume(
    volume_name: str, secret_name: str, secret_key: str, file_name: str
) -> k8s.Volume:
    """One key of a Secret that may not exist, as the file ``file_name`` in a volume.

    With ``optional: true`` a missing Secret (or key) leaves the volume empty and the pod
    starts; whoever reads the file then finds none.
    """
    return secret_files_volume(volume_name, secret_name, {secret_key: file_name}, optional=True)


def secret_files_volume(
    volume_name: str, secret_name: str, files: dict[str, str], *, optional: bool
) -> k8s.Volume:
    """Keys of a Secret, each as a file (``{key: file name}``) in a volume; with ``optional``
    the Secret may be missing (see :func:`optional_secret_file_volume`), without it the pod
    does not start until it exists."""
    return kube.Volume(
        name=volume_name,
        secret=kube.SecretVolumeSource(
            secret_name=secret_name,
            optional=optional or None,
            default_mode=SECRET_FILE_MODE,
            items=[kube.KeyToPath(key=key, path=path) for key, path in files.items()],
        ),
    )


def resource_requirements(
    requests: Mapping[str, str | int], limits: Mapping[str, str | int] | None = None
) -> k8s.ResourceRequirements:
    """Requests and limits (``{"cpu": "500m", "nvidia.com/gpu": 1}``) as Kubernetes
    quantities; no limits when ``limits`` is empty or ``None``."""
    return kube.ResourceRequirements(
        requests={k: quantity(v) for k, v in requests.items()},
        limits={k: quantity(v) for k, v in limits.items()} if limits else None,
    )

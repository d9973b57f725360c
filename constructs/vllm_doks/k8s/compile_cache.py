"""vLLM's compile cache on the NFS share, so only the first pod of a configuration compiles.

After loading weights vLLM spends tens of seconds to minutes in torch.compile (and Inductor and
Triton) on every start; with the cache it loads the compiled graphs in seconds (figures in
:mod:`vllm_doks.cold_start`). vLLM v0.18 keeps everything under ``VLLM_CACHE_ROOT``:
``torch_compile_cache/<hash>/rank_<i>_<j>/`` with ``inductor_cache`` and ``triton_cache``
inside, as it points ``TORCHINDUCTOR_CACHE_DIR`` and ``TRITON_CACHE_DIR`` there itself
(``InductorAdaptor.initialize_cache`` in vllm/compilation/compiler_interface.py). The
``<hash>`` is vLLM's own key: the first 10 hex digits of a SHA-256 over its compile-relevant
environment variables (``envs.compile_factors()``), the vLLM config hash (model path, dtype,
quantization, parallelism, compile settings ...), the traced source files and the compiler
(vllm/compilation/backends.py, ``VllmBackend.__call__``).

How it is shared, and why this way
----------------------------------
* Each pod compiles into its own ``VLLM_CACHE_ROOT`` (an emptyDir), never on the share: vLLM
  writes ``vllm_compile_cache.py`` with a plain ``open(path, "w")``
  (``CompilerManager.save_to_file``), not atomically, and reads it back with
  ``ast.literal_eval`` without catching errors, so a pod starting while another writes the same
  shared file could read half a file and crash.
* An init container (``compile-cache-seed``) copies the newest complete generation of the
  share's key directory in; a native sidecar (``compile-cache-publish``) waits until vLLM
  answers ``/health`` (compilation is over), and if vLLM wrote anything new, copies the cache to
  a temporary directory of its own and renames it to ``gen-<time>-<pod>``: a reader only ever
  sees complete generations, and two pods publishing at once publish two generations.
* The key directory (:func:`compile_cache_key`) changes with everything the cached result
  depends on that the configuration controls: the model and its revision, the vLLM image, the
  GPU size, tensor parallelism, quantization, KV-cache dtype and every vLLM argument.

Pitfalls (and what is done about them)
--------------------------------------
* A per-pod value in vLLM's hash makes a key that never hits: Dynamo passed a per-run worker id
  in ``additional_config`` (ai-dynamo/dynamo#10119) and saw the persistent cache not reused
  (ai-dynamo/dynamo#10695). Nothing per pod goes into our arguments; vLLM v0.18 ignores
  ``VLLM_HOST_IP``, ``VLLM_PORT`` and ``VLLM_CACHE_ROOT`` in its hash (``ignored_factors``).
* ``VLLM_API_KEY`` is *not* ignored (vllm/envs.py v0.18.0, ``compile_factors``): rotating the
  API key changes vLLM's hash, so the first pod after a rotation compiles cold. The publisher
  handles it: new files mean a new generation, so later pods hit again.
* A key that is too coarse never hits either: a pod that seeds a generation for another
  vLLM hash compiles cold, and if it did not publish, neither would the next one. Publishing
  whenever vLLM wrote new files avoids that.
* Old generations and keys stay on the share: each publish keeps the newest two generations
  of its key; a key no pool uses any more is left for you to delete
  (``<mount>/.vllm-compile-cache/<key>``). The capacity plan counts
  :data:`~vllm_doks.cold_start.COMPILE_CACHE_GIB` per pool on the share.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

from cdk8s_plus_28 import k8s

from vllm_doks import contracts
from vllm_doks.k8s import kube
from vllm_doks.k8s.pod_security import (
    container_security_context,
    env,
    resource_requirements,
    tmp_mount,
)
from vllm_doks.k8s.scripts import COMPILE_CACHE, sh_command

#: Directory of the caches under the store's mount path (one subdirectory per key).
SHARE_DIR = ".vllm-compile-cache"
#: ``VLLM_CACHE_ROOT`` in the vLLM container: on its ``/tmp`` emptyDir.
LOCAL_CACHE_ROOT = "/tmp/vllm-cache"
#: The volume (the store's claim, read-write) that only the seed and publish containers mount;
#: vLLM itself keeps its read-only view of the share.
VOLUME = "compile-cache"
#: Where the seed and publish containers mount the share.
MOUNT_PATH = "/compile-cache"
#: Generations of one key kept on the share.
KEEP_GENERATIONS = 2

_REQUESTS = {"cpu": "50m", "memory": "64Mi"}
_LIMITS = {"cpu": "500m", "memory": "256Mi"}


def compile_cache_key(
    *,
    model_id: str,
    revision: str | None,
    image: str,
    gpu_size: str,
    tensor_parallel_size: int,
    quantization: str | None,
    kv_cache_dtype: str | None,
    vllm_args: Sequence[str],
) -> str:
    """A directory name that changes whenever the compiled result could: a readable prefix
    (model, GPU size, TP, quantization) and a hash of every input."""
    readable = "-".join(
        [
            model_id.rsplit("/", 1)[-1],
            gpu_size,
            f"tp{tensor_parallel_size}",
            quantization or "noquant",
        ]
    )
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", readable).strip("-.")[:80]
    digest = hashlib.sha256(
        json.dumps(
            {
                "model_id": model_id,
                "revision": revision,
                "image": image,
                "gpu_size": gpu_size,
                "tensor_parallel_size": tensor_parallel_size,
                "quantization": quantization,
                "kv_cache_dtype": kv_cache_dtype,
                "vllm_args": list(vllm_args),
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:12]
    return f"{readable}-{digest}"


class CompileCachePod:
    """The pod parts of the compile cache for one worker pool: the env var, the volume, the
    seed init container and the publish sidecar (see the module doc)."""

    def __init__(self, *, claim_name: str, key: str, image: str, port: int) -> None:
        self.key = key
        self.share_key_dir = f"{MOUNT_PATH}/{SHARE_DIR}/{key}"
        self._claim_name = claim_name
        self._image = image
        self._port = port

    def env(self) -> list[k8s.EnvVar]:
        return [env(contracts.VLLM_CACHE_ROOT_ENV, LOCAL_CACHE_ROOT)]

    def volume(self) -> k8s.Volume:
        return kube.Volume(
            name=VOLUME,
            persistent_volume_claim=kube.PersistentVolumeClaimVolumeSource(
                claim_name=self._claim_name
            ),
        )

    def _container(self, name: str, *args: str, sidecar: bool) -> k8s.Container:
        return kube.Container(
            name=name,
            # The vLLM image: already on the node, and it has sh, cp and curl.
            image=self._image,
            image_pull_policy="IfNotPresent",
            command=sh_command(COMPILE_CACHE, *args),
            # Always on an init container makes it a native sidecar: started before vLLM,
            # running alongside it, stopped after it.
            restart_policy="Always" if sidecar else None,
            resources=resource_requirements(_REQUESTS, _LIMITS),
            security_context=container_security_context(),
            volume_mounts=[
                kube.VolumeMount(name=VOLUME, mount_path=MOUNT_PATH),
                tmp_mount(),
            ],
        )

    def seed_container(self) -> k8s.Container:
        return self._container(
            "compile-cache-seed", "seed", self.share_key_dir, LOCAL_CACHE_ROOT, sidecar=False
        )

    def publish_container(self) -> k8s.Container:
        return self._container(
            "compile-cache-publish",
            "publish",
            self.share_key_dir,
            LOCAL_CACHE_ROOT,
            str(self._port),
            "10",
            str(KEEP_GENERATIONS),
            sidecar=True,
        )

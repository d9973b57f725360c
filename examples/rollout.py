"""A model with two LoRA adapters, and a canary rollout of a change to its pool.

Run: python examples/rollout.py OUTDIR [--canary-weight N] [--promote [--skip-smoke-check]]
                                 [--finish] [--namespace NS]
(writes OUTDIR/rollout.yaml; then ``kubectl apply -f OUTDIR/``). The README's "Rollouts and
LoRA adapters" section walks through the steps:

* no option: pool ``vllm`` serves Qwen2.5-7B-Instruct as ``qwen`` plus the adapters ``sql``
  and ``support`` (each downloaded once to the share by its own Job);
* ``--canary-weight N`` (0, 10, 50 or 100): pool ``vllm-green`` (the same model and adapters,
  with an fp8 KV cache: the change being rolled out) gets N % of the route's requests;
  requests with ``x-vllm-doks-canary: true`` go to it whatever N is, and the Job
  ``vllm-green-smoke-test-<hash>`` sends one such request for ``qwen``, ``sql`` and ``support``;
* ``--canary-weight 100 --promote``: ``vllm-green`` alone on the route, ``vllm`` still running
  for a quick rollback. Refused (nothing written) unless that smoke-test Job succeeded on the
  cluster (``kubectl`` with your kubeconfig; ``--skip-smoke-check`` promotes without asking);
* ``--finish``: ``vllm-green`` is the only pool (delete the old one: see the README).
"""

import argparse
import sys

# Import vllm_doks before cdk8s/cdktf: it points jsii at the bundled Node 22.
import vllm_doks  # noqa: F401

# isort: split
import cdk8s
from constructs import Construct

from vllm_doks import ValidationError
from vllm_doks.k8s import (
    CanarySplit,
    GatewayEndpoint,
    GatewayEndpointProps,
    LoraAdapter,
    LoraAdapterProps,
    LoraOptions,
    NfsModelStore,
    NfsModelStoreProps,
    VllmWorkerPool,
    VllmWorkerPoolProps,
    add_namespace,
)
from vllm_doks.k8s.smoke_test import SmokeTest, SmokeTestProps
from vllm_doks.promotion import SKIP_OPTION, require_smoke_tests_passed

GPU_POOL = "my-vllm-gpu-h100"  # Stack 1 output gpu_node_pool_name
MODEL = "Qwen/Qwen2.5-7B-Instruct"
#: The adapters: (name clients send, Hugging Face repository, LoRA rank from its
#: adapter_config.json). Placeholders: put your adapters' repositories and ranks here.
ADAPTERS = (
    ("sql", "acme/qwen2.5-7b-instruct-sql-lora", 16),
    ("support", "acme/qwen2.5-7b-instruct-support-lora", 64),
)


class Rollout(cdk8s.Chart):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        canary_weight: int | None,
        promote: bool,
        finish: bool,
        namespace: str = "vllm",
    ) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        #: The canary's smoke test (every canary step), which a promotion must see succeed.
        self.canary_smoke_test: SmokeTest | None = None
        add_namespace(self, namespace)
        store = NfsModelStore(
            self,
            "Models",
            NfsModelStoreProps(
                nfs_server="10.200.0.5",  # Stack 1 output nfs_host
                nfs_path="/123456/abcdef",  # Stack 1 output nfs_mount_path
                capacity_gi=1000,
                namespace=namespace,
            ),
        )
        model = store.add_model(MODEL, node_pool_name=GPU_POOL)
        lora = LoraOptions(
            adapters=tuple(
                LoraAdapter(
                    self,
                    f"Adapter-{name}",
                    LoraAdapterProps(
                        base_model=model,
                        adapter_id=repo,
                        name=name,
                        rank=rank,
                        base_model_id=MODEL,  # the adapters' base_model_name_or_path
                    ),
                )
                for name, repo, rank in ADAPTERS
            )
        )
        gateway = GatewayEndpoint(self, "Gateway", GatewayEndpointProps(namespace=namespace))

        def pool(name: str, kv_cache_dtype: str | None = None) -> VllmWorkerPool:
            return VllmWorkerPool(
                self,
                name,
                VllmWorkerPoolProps(
                    model=model,
                    gpu_node_pool_name=GPU_POOL,
                    name=name,
                    served_model_name="qwen",
                    lora=lora,
                    max_model_len=32768,
                    kv_cache_dtype=kv_cache_dtype,
                ),
            )

        if finish:
            gateway.route_to(pool("vllm-green", kv_cache_dtype="fp8"), route_name="vllm-route")
            return
        stable = pool("vllm")
        if canary_weight is None:
            gateway.route_to(stable, route_name="vllm-route")
            return
        green = pool("vllm-green", kv_cache_dtype="fp8")
        gateway.route_to(
            stable,
            route_name="vllm-route",
            canary=CanarySplit(pool=green, weight=canary_weight, promoted=promote),
        )
        # The model and both adapters through the Gateway, canary header and API key: the
        # same Job (same name) at every step of this canary, so a promotion can check it.
        self.canary_smoke_test = SmokeTest(
            self,
            "CanarySmokeTest",
            SmokeTestProps(endpoint=gateway, pool=green, canary=True, gates_promotion=promote),
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--canary-weight", type=int)
    parser.add_argument("--promote", action="store_true")
    parser.add_argument(
        SKIP_OPTION, action="store_true", help="promote without the canary's smoke test"
    )
    parser.add_argument("--finish", action="store_true")
    parser.add_argument("--namespace", default="vllm")
    args = parser.parse_args()
    app = cdk8s.App(outdir=args.outdir, output_file_extension=".yaml")
    chart = Rollout(
        app,
        "rollout",
        canary_weight=args.canary_weight,
        promote=args.promote,
        finish=args.finish,
        namespace=args.namespace,
    )
    smoke = chart.canary_smoke_test
    if args.promote and smoke is not None and not args.skip_smoke_check:
        try:
            require_smoke_tests_passed([(smoke.namespace, smoke.job_name)])
        except ValidationError as err:
            sys.exit(f"not promoting, nothing written: {err}")
    app.synth()

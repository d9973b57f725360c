"""Using vllm-doks from another project: your own cdk8s chart with the three constructs.

Run: python examples/own_chart.py [OUTDIR]
(writes OUTDIR/my-inference.yaml; OUTDIR defaults to ./dist-example; prints what it wrote)

Any import order works: the installed package points jsii at its Node 22 when Python starts.
"""

import sys
from pathlib import Path

import cdk8s
from constructs import Construct

from vllm_doks import (
    GatewayEndpoint,
    NfsModelStore,
    NfsModelStoreProps,
    VllmWorkerPool,
    VllmWorkerPoolProps,
)
from vllm_doks.k8s import add_namespace


class MyInference(cdk8s.Chart):
    """A team's chart: its own namespace and names, Stack 1's NFS share, one model."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        add_namespace(self, "team-a")
        store = NfsModelStore(
            self,
            "Models",
            NfsModelStoreProps(
                nfs_server="10.200.0.5",  # Stack 1 output nfs_host
                nfs_path="/123456/abcdef",  # Stack 1 output nfs_mount_path
                capacity_gi=500,
                namespace="team-a",
                name="team-a-models",
            ),
        )
        model = store.add_model("Qwen/Qwen2.5-7B-Instruct", node_pool_name="prod-gpu-h100")
        pool = VllmWorkerPool(
            self,
            "Qwen",
            VllmWorkerPoolProps(
                model=model, gpu_node_pool_name="prod-gpu-h100", replicas=2, name="qwen"
            ),
        )
        # Props as keyword arguments work too: the same as GatewayEndpointProps(...).
        gateway = GatewayEndpoint(self, "Gateway", name="team-a-gateway", namespace="team-a")
        gateway.route_to(pool)


if __name__ == "__main__":
    outdir = Path(sys.argv[1] if len(sys.argv) > 1 else "dist-example")
    app = cdk8s.App(outdir=str(outdir), output_file_extension=".yaml")
    MyInference(app, "my-inference")
    app.synth()
    for written in sorted(outdir.glob("*.yaml")):
        kinds = [
            line.split(":", 1)[1].strip()
            for line in written.read_text().splitlines()
            if line.startswith("kind:")
        ]
        print(f"wrote {written} ({len(kinds)} objects: {', '.join(sorted(set(kinds)))})")

"""Using vllm-doks from another project: your own cdk8s chart with the three constructs.

Run: python examples/own_chart.py [OUTDIR]
(writes OUTDIR/my-inference.yaml; OUTDIR defaults to ./dist-example)
"""

import sys

# Import vllm_doks before cdk8s/cdktf: it points jsii at the bundled Node 22.
import vllm_doks  # noqa: F401

# isort: split
import cdk8s
from constructs import Construct

from vllm_doks import (
    GatewayEndpoint,
    GatewayEndpointProps,
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
        gateway = GatewayEndpoint(
            self, "Gateway", GatewayEndpointProps(name="team-a-gateway", namespace="team-a")
        )
        gateway.route_to(pool)


if __name__ == "__main__":
    app = cdk8s.App(
        outdir=sys.argv[1] if len(sys.argv) > 1 else "dist-example", output_file_extension=".yaml"
    )
    MyInference(app, "my-inference")
    app.synth()

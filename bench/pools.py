"""Synth time of one chart as the number of worker pools grows (in-process, warm kernel).

Prints "<pools> <seconds>" per line; `--check-modules` instead prints whether a
Kubernetes-only app synth loaded the DigitalOcean provider ("yes"/"no").
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import vllm_doks  # noqa: F401

# isort: split
import cdk8s

from vllm_doks.k8s import (
    GatewayEndpoint,
    NfsModelStore,
    NfsModelStoreProps,
    VllmWorkerPool,
    VllmWorkerPoolProps,
)


def chart_with_pools(n: int, outdir: str) -> float:
    start = time.perf_counter()
    app = cdk8s.App(outdir=outdir)
    chart = cdk8s.Chart(app, "bench", disable_resource_name_hashes=True)
    store = NfsModelStore(
        chart, "Models", NfsModelStoreProps(nfs_server="10.0.0.2", nfs_path="/s", capacity_gi=5000)
    )
    gateway = GatewayEndpoint(chart, "Gateway")
    for i in range(n):
        model = store.add_model(f"org/model-{i}")
        pool = VllmWorkerPool(
            chart,
            f"Pool{i}",
            VllmWorkerPoolProps(model=model, gpu_node_pool_name="gpu", name=f"pool-{i}"),
        )
        gateway.route_to(pool, path_prefix=f"/m{i}")
    app.synth()
    return time.perf_counter() - start


def main() -> None:
    if "--check-modules" in sys.argv:
        from vllm_doks.cli import main as app_main

        with tempfile.TemporaryDirectory() as tmp:
            app_main(["synth", "--layer", "k8s", "--k8s-outdir", f"{tmp}/dist"], env={})
        print("yes" if "cdktf_cdktf_provider_digitalocean" in sys.modules else "no")
        return
    with tempfile.TemporaryDirectory() as tmp:
        chart_with_pools(1, f"{tmp}/warmup")
        for n in (1, 8, 32):
            times = [chart_with_pools(n, f"{tmp}/{n}-{r}") for r in range(3)]
            print(n, statistics.median(times))


if __name__ == "__main__":
    main()

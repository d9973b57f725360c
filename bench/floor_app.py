"""Floor for the benchmark: import the same jsii libraries as the default synth and
synthesize an empty Terraform stack and an empty cdk8s chart. Nothing of vllm-doks runs
except the Node 22 wiring, so (default synth time / this) is the library's overhead.

``k8s --include FILE`` puts FILE's objects (a synthesized dist/vllm.yaml) into the chart with
one ``cdk8s.Include``: the same output through cdk8s without the library, to tell the cost of
the objects themselves from the library's."""

import sys
import tempfile

import vllm_doks

args = sys.argv[1:]
include = args[args.index("--include") + 1] if "--include" in args else None
layers = [a for a in args if a in ("cloud", "k8s")] or ["cloud", "k8s"]
out = tempfile.mkdtemp()
if "cloud" in layers:
    import cdktf
    import cdktf_cdktf_provider_digitalocean.provider as do_provider

    app = cdktf.App(outdir=f"{out}/cdktf.out")
    stack = cdktf.TerraformStack(app, "empty")
    do_provider.DigitaloceanProvider(stack, "digitalocean")
    app.synth()
if "k8s" in layers:
    import cdk8s
    import cdk8s_plus_28  # noqa: F401

    import vllm_doks._imports.io.k8s.networking.gateway  # noqa: F401

    k8s_app = cdk8s.App(outdir=f"{out}/dist")
    chart = cdk8s.Chart(k8s_app, "empty")
    if include:
        cdk8s.Include(chart, "objects", url=include)
    k8s_app.synth()

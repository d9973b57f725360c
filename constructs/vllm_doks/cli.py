"""``app.py`` / ``vllm-doks``: synthesize the cloud layer and/or the Kubernetes layer.

Both CLIs run this: ``cdktf synth`` (cdktf.json) asks for the cloud layer and passes its
outdir in ``CDKTF_OUTDIR``; ``cdk8s synth`` (cdk8s.yaml) asks for the Kubernetes layer with
``CDK8S_OUTDIR``. Without a CLI, ``python app.py synth`` writes both.

Every input is validated before anything is written, and each layer is synthesized into a
temporary directory that replaces the previous output only when the whole synth succeeded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from vllm_doks import _jsii_loading
from vllm_doks.config import (
    ENV_PREFIX,
    SECRET_INPUTS,
    ArchitectureConfig,
    InfraOutputs,
    config_fields,
    load_config,
    parse_infra_outputs,
)
from vllm_doks.removed_objects import removal_report, removed_objects, write_removed
from vllm_doks.validation import Problem, Problems, ValidationError
from vllm_doks.wiring import infra_props as infra_props  # moved; public path kept

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    from vllm_doks.cloud import InfraProps

LAYERS = ("cloud", "k8s")
DEFAULT_CLOUD_OUTDIR = "cdktf.out"
DEFAULT_K8S_OUTDIR = "dist"
#: What every refused or stopped synth that replaced nothing says last.
NOTHING_WRITTEN = "nothing was written; previous output is unchanged."
#: The exit code of a synth stopped by Ctrl-C: 128 + SIGINT, as shells report such a process.
INTERRUPTED = 130
INFRA_STACK_NAME = "vllm-infra"
KUBERNETES_STACK_NAME = "vllm-kubernetes"
#: The jsii libraries (top packages) each synth loads, each after its dependencies: what the
#: CLI's loading thread sends the jsii process while the synth imports them (see
#: vllm_doks._jsii_loading; tests/app/test_jsii_loading.py checks that a synth loads no other).
#: Stack 2 via Terraform adds the Kubernetes layer and the Terraform Kubernetes provider to the
#: cloud layer. Bindings that only some options use (KEDA, InferencePool, PodMonitor) are
#: loaded by their first use.
JSII_LIBRARIES: Mapping[str, tuple[str, ...]] = {
    "cloud": ("constructs", "cdktf", "cdktf_cdktf_provider_digitalocean"),
    "k8s": (
        "constructs",
        "cdk8s",
        "cdk8s_plus_28",
        "vllm_doks._imports.io.k8s.networking.gateway",
    ),
    "kubernetes_via_terraform": ("cdktf_cdktf_provider_kubernetes",),
}


def synth_cloud(config: ArchitectureConfig, outdir: Path) -> None:
    from cdktf import App

    from vllm_doks.cloud import VllmInfraStack

    app = App(outdir=str(outdir))
    props = infra_props(config)
    VllmInfraStack(app, INFRA_STACK_NAME, props)
    if config.kubernetes_via_terraform:
        add_kubernetes_stack(app, config, props)
    app.synth()


def add_kubernetes_stack(app: Any, config: ArchitectureConfig, props: InfraProps) -> None:
    """Stack 2 as Terraform: the serving chart's objects as kubernetes_manifest resources.

    The chart is built by the same construct as ``dist/vllm.yaml``; Stack 1's NFS address
    arrives as remote-state references that Terraform resolves at plan time.
    """
    import cdk8s

    from vllm_doks.cloud.kubernetes_stack import (
        ApiKeySecret,
        HfTokenSecret,
        KubernetesObjectsStackProps,
        StackOneValues,
        VllmKubernetesStack,
    )
    from vllm_doks.cloud.variable_secrets import SecretFromVariable
    from vllm_doks.k8s.serving_chart import CHART_NAME, VllmServingChart

    def infra_from(values: StackOneValues) -> InfraOutputs:
        return InfraOutputs(
            nfs_host=values.nfs_host,
            nfs_mount_path=values.nfs_mount_path,
            nfs_size_gb=config.nfs_size_gb,
            gpu_node_pool_name=props.gpu_node_pool_name,
        )

    def build_chart(k8s_app: cdk8s.App, values: StackOneValues) -> None:
        VllmServingChart(k8s_app, CHART_NAME, config, infra_from(values))

    # The outputs are facts of the chart; a throwaway copy with example NFS values knows them.
    outputs = VllmServingChart(
        cdk8s.App(), CHART_NAME, config, InfraOutputs.examples_for(config)
    ).outputs
    VllmKubernetesStack(
        app,
        KUBERNETES_STACK_NAME,
        KubernetesObjectsStackProps(
            build_chart=build_chart,
            outputs=outputs,
            infra_stack_name=INFRA_STACK_NAME,
            infra_state=props.state_backend,
            hf_token_secret=(
                HfTokenSecret(namespace=config.namespace, name=config.hf_token_secret)
                if config.hf_token_secret
                else None
            ),
            # The stack owns the namespace, so it owns the API key Secret in it too (from the
            # sensitive var.vllm_api_key): no kubectl step before apply can collide with it.
            api_key_secret=(
                ApiKeySecret(namespace=config.namespace, name=config.api_key_secret)
                if config.api_key_secret
                else None
            ),
            # Stack 1's read-only key of the model bucket, from its sensitive outputs.
            model_bucket_secret=(
                SecretFromVariable(namespace=config.namespace, name=config.model_source_secret)
                if config.create_model_source_bucket and config.model_source_bucket
                else None
            ),
        ),
    )


def synth_k8s(config: ArchitectureConfig, outputs: InfraOutputs, outdir: Path) -> dict[str, Any]:
    from vllm_doks.k8s.serving_chart import synth_serving_chart

    return synth_serving_chart(config, outputs, outdir)


def _replace_dir(staged: Path, final: Path) -> None:
    """Swap a fully written directory into place; the old one is removed only afterwards."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        old.rmdir()
        final.rename(old)
    try:
        staged.rename(final)
    except BaseException:  # an interrupt (Ctrl-C) between the renames: put the old one back
        if old is not None and not final.exists():
            old.rename(final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _stage(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    # Absolute: the jsii kernel (a Node process) resolves relative paths against its own
    # working directory, which is not this process's if the caller changed directory since.
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.new-", dir=final.parent)).absolute()
    staging.chmod(0o755)  # mkdtemp's 0700 would make the output private to its writer
    return staging


def _kubernetes_layer(
    config: ArchitectureConfig, outputs: InfraOutputs, staging: Path
) -> tuple[list[Problem], dict[str, Any]]:
    """Check and synthesize the Kubernetes layer; problems are returned, not raised, so the
    caller can report them together with the cloud layer's. Runs in a child process when both
    layers are synthesized (see ``synth``)."""
    from vllm_doks.preflight import kubernetes_problems

    problems = kubernetes_problems(config, outputs)
    if problems:
        return list(problems.items), {}
    try:
        return [], synth_k8s(config, outputs, staging)
    except ValidationError as e:  # a construct's own check, beyond the config's fields
        return [
            Problem(f"{e.where}: {p.field}" if e.where else p.field, p.value, p.expected)
            for p in e.problems
        ], {}


#: Usable cores from which the default synth runs the Kubernetes layer in a second process.
#: One process already keeps two cores busy: its Python imports the libraries while its Node
#: process loads them (vllm_doks._jsii_loading). A second process adds an interpreter and a
#: Node process to start, which pays only when those get cores of their own: measured on this
#: 2-core machine (cold runs taking turns, median of 7), one process 1.21-1.29 s against two
#: 1.30-1.51 s, and on one core (taskset) 1.85 s against 2.34 s. Four cores is an estimate
#: (two processes, each with Python and Node busy at once), not a measurement: we have no
#: such machine here.
SECOND_PROCESS_MIN_CORES = 4


def _second_process_pays() -> bool:
    """A second process for the Kubernetes layer pays off: enough cores (see
    SECOND_PROCESS_MIN_CORES), and neither layer's libraries loaded yet (it would load cdk8s
    while this one loads cdktf; a warm caller, e.g. a second synth in one process or the test
    suite, would pay a new interpreter and jsii kernel for nothing)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cold = not {"cdktf", "cdk8s"} & sys.modules.keys()
    return cold and (cores or 1) >= SECOND_PROCESS_MIN_CORES


def synth(
    config: ArchitectureConfig,
    layers: Sequence[str],
    outdirs: dict[str, Path],
    infra_outputs: InfraOutputs | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    parallel: bool = True,
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    replaced: list[str] | None = None,
) -> dict[str, Any]:
    """Validate, then synthesize each requested layer into a staging directory, then swap.

    Every problem of the configuration is reported in one ValidationError before any output
    is replaced. With both layers and ``parallel``, the Kubernetes layer runs in a second
    process where that pays (:func:`_second_process_pays`): each process loads its layer's
    jsii libraries, on cores of their own. Returns the Kubernetes layer's report (Stack 2
    outputs etc.). ``log`` receives progress (the capacity plan), ``warn`` the warnings;
    ``replaced``, when given, each layer as its output is replaced (what an interrupted synth
    changed).
    """
    from vllm_doks.preflight import cloud_problems, kubernetes_problems, unplanned_models

    outputs = infra_outputs or InfraOutputs.examples_for(config)
    want_cloud, want_k8s = "cloud" in layers, "k8s" in layers
    # Stack 2 via Terraform builds the chart inside the cloud layer: no split then.
    split = (
        parallel
        and want_cloud
        and want_k8s
        and not config.kubernetes_via_terraform
        and _second_process_pays()
    )

    # The CLI's loading thread (if any) loads what this process will import, meanwhile; the
    # other process loads its own (_start_kubernetes_process).
    here = ["cloud"] if split else [layer for layer in ("k8s", "cloud") if layer in layers]
    if config.kubernetes_via_terraform and "cloud" in here:
        here = ["k8s", "cloud", "kubernetes_via_terraform"]  # the chart is checked first
    _jsii_loading.add(*dict.fromkeys(lib for part in here for lib in JSII_LIBRARIES[part]))
    staged: dict[str, Path] = {}
    report: dict[str, Any] = {}
    removal_note = ""
    child: Future[tuple[list[Problem], dict[str, Any]]] | None = None
    executor: ProcessPoolExecutor | None = None
    try:
        problems = Problems()
        if split:
            # Imported here: a one-layer synth never starts a second process.
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            staged["k8s"] = _stage(outdirs["k8s"])
            executor = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_kubernetes_process,
            )
            with _ctrl_c_held_back():  # until that process can stop quietly
                child = executor.submit(_kubernetes_layer, config, outputs, staged["k8s"])
            executor.shutdown(wait=False)  # its process ends once its one job is done
        if want_cloud:
            problems.extend(cloud_problems(config).items)
        if (want_k8s and not split) or config.kubernetes_via_terraform:
            problems.extend(kubernetes_problems(config, outputs).items)
        if want_cloud and not problems:
            staged["cloud"] = _stage(outdirs["cloud"])
            synth_cloud(config, staged["cloud"])
        if child is not None:
            child_problems, report = child.result()
            problems.extend(child_problems)
        elif want_k8s and not problems:
            staged["k8s"] = _stage(outdirs["k8s"])
            report = synth_k8s(config, outputs, staged["k8s"])
        problems.raise_if_any()
        if "k8s" in staged:
            # kubectl apply never deletes: say what the replaced dist/ had and this one lacks.
            removed = removed_objects(outdirs["k8s"], staged["k8s"])
            if removed:
                write_removed(staged["k8s"], removed)
            removal_note = removal_report(outdirs["k8s"], removed, outdirs["k8s"])
        for layer in LAYERS:
            if layer in staged:
                _replace_dir(staged[layer], outdirs[layer])
                del staged[layer]  # after: an interrupted replace leaves it to the cleanup
                if replaced is not None:
                    replaced.append(layer)
    finally:
        # Let the other process finish writing before its staging directory goes.
        if child is not None:
            from concurrent.futures import wait

            wait([child])
        elif executor is not None:
            # An interrupt (Ctrl-C) came between starting that process and holding its future:
            # it went on writing into the removed directory and left it behind.
            executor.shutdown(wait=True, cancel_futures=True)
        for staging in staged.values():
            shutil.rmtree(staging, ignore_errors=True)

    table = report.pop("capacity_table", None)
    if table:
        log(table)
    if want_k8s and config.models and (missing := unplanned_models(config)):
        warn(
            f"NOTE: the capacity plan leaves out {', '.join(missing)}: not in the built-in "
            "table; set parameters_b in their models: entries to have GPU memory and NFS "
            "space checked."
        )
    elif want_k8s and not config.models and not table:
        warn(
            f"NOTE: no capacity plan: {config.model_id} is not in the built-in table; set "
            "model_config_json (the model's config.json) to have the KV cache, GPU memory and "
            "NFS space checked, or model_parameters_b for weights only."
        )
    if removal_note:
        warn(removal_note)  # objects the user must delete: an action, not progress
    if want_k8s and outputs.examples:
        warn(
            "WARNING: no Stack 1 outputs given (--infra-outputs); these values in "
            f"{outdirs['k8s']}/ are EXAMPLES, not your deployment's: "
            + ", ".join(f"{k}={getattr(outputs, k)}" for k in outputs.examples)
            + ". Re-run with --infra-outputs <file from `cdktf deploy --outputs-file` or "
            "`terraform output -json`> before `kubectl apply`."
        )
    return report


def _output_state(replaced: Sequence[str], outdirs: Mapping[str, Path]) -> str:
    """What a synth that stopped part-way left: each layer's output is replaced whole or not
    at all."""
    if not replaced:
        return NOTHING_WRITTEN
    written = ", ".join(f"{outdirs[layer]}/ ({layer} layer)" for layer in replaced)
    return f"{written} replaced; any other layer's previous output is unchanged."


def _outdir_problem(layer: str, path: Path) -> str | None:
    """Why ``path`` cannot take ``layer``'s output, or ``None``. The output is written beside
    it (a staging folder in its parent, then a rename), so that parent must be a writable
    folder, or be creatable in one."""
    flag = _flag(f"{layer}_outdir")
    if path.exists() and not path.is_dir():
        return f"{flag} {path}: is a file, not a folder"
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        return f"{flag} {path}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{flag} {path}: {existing} is not writable"
    return None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


_NEGATIVE_NUMBER = re.compile(r"^-[0-9]+([.][0-9]*)?$")


class _Parser(argparse.ArgumentParser):
    """``argparse`` that never echoes what it does not recognize.

    An unknown flag may carry a credential (``--hf-token hf_...``, ``--api-key=...``): the
    error names the unknown flags only, never a value, and points secret-looking names to
    where the credential goes instead.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = list(sys.argv[1:] if args is None else args)
        # Unknown flags are found before argparse parses anything: otherwise the value after
        # one would be taken for the positional command and echoed in "invalid choice".
        flags = argv[: argv.index("--")] if "--" in argv else argv
        unknown = [
            a.split("=", 1)[0]
            for a in flags
            if a.startswith("-")
            and not _NEGATIVE_NUMBER.match(a)
            and a.split("=", 1)[0] not in self._option_string_actions
        ]
        if unknown:
            hints = [
                f"{flag} {SECRET_INPUTS[flag.lstrip('-').replace('-', '_')]}"
                for flag in unknown
                if flag.lstrip("-").replace("-", "_") in SECRET_INPUTS
            ]
            self.error(
                f"unrecognized arguments: {', '.join(unknown)} (values not shown)"
                + "".join(f"; {h}" for h in hints)
            )
        parsed, extras = super().parse_known_args(argv, namespace)
        if extras:
            self.error(f"{len(extras)} unexpected value(s) (not shown); see --help")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="app.py",
        # No prefix matching: "--hf-token hf_..." must not silently become --hf-token-secret
        # (and land a credential in a Secret name).
        allow_abbrev=False,
        description="Synthesize vLLM on DOKS with Managed NFS: the cloud layer (CDKTF, Terraform "
        "JSON in cdktf.out/) and the Kubernetes layer (CDK8s, YAML in dist/).",
        epilog=f"Every input can also be set as an environment variable {ENV_PREFIX}<NAME> "
        "(e.g. VLLM_DOKS_REPLICAS=3); VLLM_DOKS_CONFIG and VLLM_DOKS_INFRA_OUTPUTS name the "
        "files when a CLI (cdktf, cdk8s) runs this app. Precedence: defaults < --config < "
        "environment < flags. Config file only: "
        + "; ".join(
            f"{f.name}: {f.metadata['help']}"
            for f in config_fields()
            if f.metadata.get("file_only")
        )
        + ".",
    )
    parser.add_argument("command", nargs="?", default="synth", choices=["synth"])
    parser.add_argument(
        "--layer",
        choices=[*LAYERS, "all"],
        default=None,
        help="layer(s) to synthesize (default: all, or what the calling CLI asks for)",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="YAML file of inputs (like terraform.tfvars)"
    )
    parser.add_argument(
        "--infra-outputs",
        metavar="FILE",
        help="Stack 1 outputs: JSON from `cdktf deploy --outputs-file` or `terraform output -json`",
    )
    parser.add_argument(
        "--cloud-outdir", default=None, help="cloud layer output (default: cdktf.out)"
    )
    parser.add_argument(
        "--k8s-outdir", default=None, help="Kubernetes layer output (default: dist)"
    )
    parser.add_argument(
        "--skip-smoke-check",
        action="store_true",
        help="promote a canary (canary: {promoted: true}) without asking the cluster whether "
        "its smoke-test Job succeeded",
    )
    inputs = parser.add_argument_group("inputs (the seed's Terraform variables and a few more)")
    for f in config_fields():
        if f.metadata.get("file_only"):
            continue
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        default = f.default
        help_text = f"{f.metadata['help']} [stack {f.metadata['stack']}, {kind}]"
        if kind == "bool":
            inputs.add_argument(
                _flag(f.name),
                dest=f.name,
                default=None,
                metavar="true|false",
                help=f"{help_text} (default: {str(default).lower()})",
            )
        else:
            inputs.add_argument(
                _flag(f.name), dest=f.name, default=None, help=f"{help_text} (default: {default!r})"
            )
    return parser


def _layers_from(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    if args.layer in LAYERS:
        return [args.layer]
    if args.layer == "all":
        return list(LAYERS)
    # Called by a CLI: each sets its own outdir variable.
    if env.get("CDKTF_OUTDIR") and not env.get("CDK8S_OUTDIR"):
        return ["cloud"]
    if env.get("CDK8S_OUTDIR") and not env.get("CDKTF_OUTDIR"):
        return ["k8s"]
    return list(LAYERS)


def progress_stream(env: dict[str, str]) -> TextIO:
    """Where progress goes: stdout, except under ``cdk8s synth``, which keeps the app's stdout
    to itself (cdk8s-cli 2.x lib/util.js ``shell``: ``stdio: ['inherit', 'pipe', 'inherit']``)
    and so shows only stderr. Under ``cdktf synth`` stdout matters most: cdktf-cli logs every
    chunk the app writes to stderr as a red ``[ERROR]`` line (@cdktf/commons src/util.js
    ``exec``: ``processLoggerError``), so only real warnings go there."""
    under_cdk8s = bool(env.get("CDK8S_OUTDIR")) and not env.get("CDKTF_OUTDIR")
    return sys.stderr if under_cdk8s else sys.stdout


def main(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    args = build_parser().parse_args(argv)
    from vllm_doks._node import node_problem

    if (problem := node_problem()) is not None:  # jsii's own Node, from os.environ
        print(f"error: {problem}", file=sys.stderr)
        return 2
    overrides = {
        f.name: getattr(args, f.name)
        for f in config_fields()
        if getattr(args, f.name, None) is not None
    }
    layers = _layers_from(args, env)
    outdirs = {
        "cloud": Path(args.cloud_outdir or env.get("CDKTF_OUTDIR") or DEFAULT_CLOUD_OUTDIR),
        "k8s": Path(args.k8s_outdir or env.get("CDK8S_OUTDIR") or DEFAULT_K8S_OUTDIR),
    }
    out = progress_stream(env)

    def progress(line: str) -> None:
        print(line, file=out, flush=True)

    def warn(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    replaced: list[str] = []
    try:
        # The CLIs run app.py with fixed arguments, so files can also come from the environment.
        config_file = args.config or env.get(f"{ENV_PREFIX}CONFIG")
        outputs_file = args.infra_outputs or env.get(f"{ENV_PREFIX}INFRA_OUTPUTS")
        config = load_config(config_file, env=env, overrides=overrides)
        infra_outputs = None
        if outputs_file:
            path = Path(outputs_file)
            try:
                text = path.read_text()
            except OSError as e:
                print(f"error: --infra-outputs {path}: {e.strerror}", file=sys.stderr)
                return 2
            infra_outputs = parse_infra_outputs(text, source=str(path))
            if "k8s" in layers or config.kubernetes_via_terraform:
                progress(infra_outputs.handoff_table())
                for conflict in infra_outputs.conflicts(config):
                    warn(f"WARNING: config and {path} disagree: {conflict}")
        if "k8s" in layers and not config.kubernetes_via_terraform and not args.skip_smoke_check:
            # A promotion is written only after the canary's smoke test passed on the cluster.
            from vllm_doks.promotion import promoted_canary_smoke_tests, require_smoke_tests_passed

            require_smoke_tests_passed(
                promoted_canary_smoke_tests(
                    config, infra_outputs or InfraOutputs.examples_for(config)
                )
            )
        outdir_problems = [p for layer in layers if (p := _outdir_problem(layer, outdirs[layer]))]
        if outdir_problems:
            for problem in outdir_problems:
                print(f"error: {problem}", file=sys.stderr)
            print(NOTHING_WRITTEN, file=sys.stderr)
            return 2
        report = synth(
            config, layers, outdirs, infra_outputs, log=progress, warn=warn, replaced=replaced
        )
    except ValidationError as e:
        print(f"error: {e}", file=sys.stderr)
        print(NOTHING_WRITTEN, file=sys.stderr)
        return 1
    except OSError as e:  # e.g. the disk filled up while writing a staging folder
        print(f"error: {e}", file=sys.stderr)
        print(_output_state(replaced, outdirs), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C: say what the output folders hold now instead of a traceback.
        print(f"interrupted: {_output_state(replaced, outdirs)}", file=sys.stderr)
        return INTERRUPTED
    for layer in layers:
        progress(f"synthesized {layer} layer -> {outdirs[layer]}/")
    if report:
        # Stack 2's outputs, as JSON for scripts (also in <k8s outdir>/meta/outputs.json).
        progress("Stack 2 outputs:")
        progress(json.dumps(report.get("outputs", {}), indent=2, sort_keys=True))
    return 0


def run() -> int:
    """The command line (``app.py``, the ``vllm-doks`` script): :func:`main`, with the jsii
    libraries loading on a thread meanwhile (vllm_doks._jsii_loading; app.py starts it
    before it imports this module), and after Ctrl-C an exit without jsii's shutdown noise.

    In a terminal, Ctrl-C stops jsii's Node process as well as this one. After the line that
    says what the output folders hold, jsii's exit handler then fails to tell the dead
    process to exit ("Exception ignored in atexit callback ... BrokenPipeError") and its
    stderr relay prints the kernel's "Error on jsii API channel to child process ...
    ECONNRESET": so stderr goes nowhere from that line on. :func:`main` itself leaves
    ``sys.stderr`` alone (tests and other callers run it in their own process).
    """
    _jsii_loading.start("constructs")
    code = main()
    if code == INTERRUPTED:
        _silence_stderr()
    return code


def _silence_stderr() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (open until the process ends)


@contextlib.contextmanager
def _ctrl_c_held_back() -> Iterator[None]:
    """A process started in this block starts with SIGINT blocked (a signal mask survives fork
    and exec), so a Ctrl-C while it imports waits for :func:`_start_kubernetes_process`. This
    process misses none meanwhile: the mask is this thread's, so another thread (jsii's) takes
    the signal, or it waits until the block ends."""
    import signal

    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks, no process groups
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_kubernetes_process() -> None:
    """The Kubernetes layer's second process (see :func:`synth`), before its one job: it loads
    its jsii libraries on a thread while the job imports them (as the CLI's own process does,
    see vllm_doks._jsii_loading) and stops quietly on Ctrl-C."""
    _jsii_loading.start(*JSII_LIBRARIES["k8s"], last=True)
    _stop_quietly_on_ctrl_c()


def _stop_quietly_on_ctrl_c() -> None:
    """The Kubernetes layer's second process (see :func:`synth`): a terminal's Ctrl-C reaches
    it as well as the CLI, which waits for it and then says what the output folders hold. It
    stops without a word of its own: no worker traceback (multiprocessing prints one for a
    KeyboardInterrupt) and none of jsii's exit noise (see :func:`run`). It starts with SIGINT
    blocked (:func:`_ctrl_c_held_back`): one that came while it imported arrives here."""
    import signal

    def stop(signum: int, frame: object) -> None:
        _silence_stderr()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

"""The output against the external contracts in vllm_doks.contracts, and those against their
sources (extracts of vLLM 0.18.0 and the Inference Extension in tests/fixtures)."""

from __future__ import annotations

import ast
import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import cdk8s
import pytest
from conftest import FIXTURES, validate_objects
from support import QWEN, STORE, VLLM_OPTIONS, Obj, k8s_app, vllm_parse_problems

from vllm_doks import contracts
from vllm_doks.cli import main
from vllm_doks.config import ArchitectureConfig, InfraOutputs
from vllm_doks.gpu_catalog import GPU_SIZES
from vllm_doks.k8s import (
    NfsModelStore,
    VllmWorkerPool,
    VllmWorkerPoolProps,
)
from vllm_doks.k8s.autoscaling import VllmAutoscaler, VllmAutoscalerProps
from vllm_doks.k8s.dashboard import VllmDashboard, VllmDashboardProps
from vllm_doks.k8s.scripts import CHECK_GPU_DEVICES, PRESTOP_DRAIN, script_text
from vllm_doks.k8s.serving_chart import VllmServingChart
from vllm_doks.k8s.vllm_worker_pool import SHUTDOWN_MARGIN_SECONDS
from vllm_doks.validation import ValidationError

INFRA = InfraOutputs(
    nfs_host="10.200.0.5", nfs_mount_path="/1234567/abcd", nfs_size_gb=1000,
    gpu_node_pool_name="my-vllm-gpu-h100",
)  # fmt: skip


def pool_chart(
    gpu_size: str = "gpu-h100x1-80gb", **props: Any
) -> tuple[cdk8s.Chart, VllmWorkerPool]:
    chart = cdk8s.Chart(k8s_app(), "test")
    model = NfsModelStore(chart, "Models", STORE).add_model(
        QWEN, node_pool_name="gpu", gpu_size=gpu_size
    )
    pool = VllmWorkerPool(
        chart,
        "Workers",
        VllmWorkerPoolProps(model=model, gpu_node_pool_name="gpu", gpu_size=gpu_size, **props),
    )
    return chart, pool


def serving_objs(**config: Any) -> list[Obj]:
    cfg = ArchitectureConfig(**config)
    infra = INFRA if cfg.gpu_size == "gpu-h100x1-80gb" else InfraOutputs.examples_for(cfg)
    chart = VllmServingChart(k8s_app(), "vllm", cfg, infra)
    return list(cdk8s.Testing.synth(chart))


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    (obj,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def vllm_container(objs: list[Obj], name: str = "vllm") -> Obj:
    spec = find(objs, "Deployment", name)["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "vllm"]
    return container


# --- vLLM's parser accepts every argument we pass ------------------------------------------

POOL_CONFIGURATIONS: list[dict[str, Any]] = [
    {},
    {"quantization": "fp8"},
    {"quantization": "fbgemm_fp8", "extra_args": ("--allow-deprecated-quantization",)},
    {"served_model_name": "qwen", "port": 9000, "termination_grace_period_seconds": 300},
    {
        "extra_args": (
            contracts.VLLM_FLAG_MAX_MODEL_LEN,
            "8192",
            contracts.VLLM_FLAG_KV_CACHE_DTYPE,
            "fp8",
            contracts.VLLM_FLAG_GPU_MEMORY_UTILIZATION,
            "0.85",
        )
    },
    *({"gpu_size": slug} for slug in sorted(GPU_SIZES)),
    {"gpu_size": "gpu-h100x8-640gb", "gpus_per_replica": 2},
]


@pytest.mark.parametrize("props", POOL_CONFIGURATIONS, ids=lambda p: ",".join(p) or "default")
def test_vllm_accepts_every_argument_of_every_pool_configuration(props: dict[str, Any]) -> None:
    chart, pool = pool_chart(**props)
    args = vllm_container(list(cdk8s.Testing.synth(chart)))["args"]
    assert args == pool.vllm_args
    assert vllm_parse_problems(args) == []


@pytest.mark.parametrize(
    "config",
    [{}, {"model_id": "Qwen/Qwen2.5-72B-Instruct", "quantization": "fp8", "replicas": 3,
          "gpu_node_count": 3},
     {"gpu_size": "gpu-mi300x8-1536gb"}],
    ids=["seed-default", "seed-ha", "amd-x8"],
)  # fmt: skip
def test_vllm_accepts_every_argument_of_the_apps_configurations(config: dict[str, Any]) -> None:
    assert vllm_parse_problems(vllm_container(serving_objs(**config))["args"]) == []


def test_the_parser_check_is_not_vacuous() -> None:
    assert vllm_parse_problems(["--shutdown-timeout-seconds", "5"]) != []
    assert vllm_parse_problems(["--kv-cache-dtype", "int4"]) != []
    assert vllm_parse_problems(["--port", "eighty"]) != []
    assert vllm_parse_problems(["--max-lora-rank", "24"]) != []
    assert vllm_parse_problems(["--lora-modules", "a=b=c"]) != []
    assert vllm_parse_problems(["--lora-modules", "--enable-lora"]) != []


def test_every_vllm_contract_is_in_vllms_own_lists() -> None:
    flags = {v for k, v in vars(contracts).items() if k.startswith("VLLM_FLAG_")}
    assert flags <= set(VLLM_OPTIONS["options"])
    assert list(contracts.VLLM_KV_CACHE_DTYPES) == VLLM_OPTIONS["choices"]["--kv-cache-dtype"]
    assert list(contracts.VLLM_QUANTIZATION_METHODS) == VLLM_OPTIONS["choices"]["--quantization"]
    assert list(contracts.VLLM_MAX_LORA_RANKS) == VLLM_OPTIONS["choices"]["--max-lora-rank"]


# --- One metric name everywhere ------------------------------------------------------------


def test_keda_dashboard_and_prestop_read_the_same_metric_names() -> None:
    chart, pool = pool_chart()
    scaler = VllmAutoscaler(
        chart,
        "A",
        VllmAutoscalerProps(
            pool=pool, prometheus_server_address="http://p:9090", running_threshold=4
        ),
    )
    dashboard = VllmDashboard(chart, "D", VllmDashboardProps(pool=pool))
    waiting, running = (
        contracts.VLLM_METRIC_REQUESTS_WAITING,
        contracts.VLLM_METRIC_REQUESTS_RUNNING,
    )
    assert scaler.waiting_query.startswith(f"sum({waiting}{{")
    assert scaler.running_query.startswith(f"sum({running}{{")
    for metric in (
        waiting,
        running,
        contracts.VLLM_METRIC_KV_CACHE_USAGE,
        contracts.VLLM_METRIC_PROMPT_TOKENS,
        contracts.VLLM_METRIC_GENERATION_TOKENS,
        contracts.VLLM_METRIC_TTFT_BUCKET,
    ):
        assert metric in dashboard.dashboard_text
    prestop = script_text(PRESTOP_DRAIN)
    # The script's awk pattern and its two exact comparisons name both gauges.
    assert prestop.count(f'"{waiting}"') == 1 and prestop.count(f'"{running}"') == 1
    assert f'{contracts.VLLM_METRICS_PATH}"' in prestop
    # No other vllm: metric name hides in the script.
    assert set(re.findall(r'"(vllm:[a-z_]+)"', prestop)) == {waiting, running}


# --- Shutdown budget ------------------------------------------------------------------------


def budget(objs: list[Obj]) -> tuple[int, int, int]:
    spec = find(objs, "Deployment", "vllm")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    args = container["args"]
    shutdown = int(args[len(args) - 1 - args[::-1].index("--shutdown-timeout") + 1])
    deadline = int(container["lifecycle"]["preStop"]["exec"]["command"][5])
    return spec["terminationGracePeriodSeconds"], deadline, shutdown


@pytest.mark.parametrize(
    ("grace", "deadline", "shutdown", "settle"),
    list(itertools.product((6, 30, 70, 130, 600), (None, 10, 40), (None, 0, 20, 60), (0, 5))),
)
def test_shutdown_budget_holds_or_is_refused(
    grace: int, deadline: int | None, shutdown: int | None, settle: int
) -> None:
    props = {
        "termination_grace_period_seconds": grace,
        "drain_deadline_seconds": deadline,
        "shutdown_timeout_seconds": shutdown,
        "prestop_settle_seconds": settle,
    }
    try:
        chart, _ = pool_chart(**props)
    except ValidationError as e:
        assert {p.field for p in e.problems} <= {
            "termination_grace_period_seconds",
            "drain_deadline_seconds",
        }
        return
    g, d, s = budget(list(cdk8s.Testing.synth(chart)))
    assert d + s + SHUTDOWN_MARGIN_SECONDS <= g
    assert d >= settle


@pytest.mark.parametrize(
    "config",
    [{}, {"replicas": 2}, {"autoscaling": True, "autoscaling_max_replicas": 2},
     {"gpu_size": "gpu-mi300x1-192gb"}],
)  # fmt: skip
def test_shutdown_budget_holds_for_the_apps_configurations(config: dict[str, Any]) -> None:
    g, d, s = budget(serving_objs(**config))
    assert d + s + SHUTDOWN_MARGIN_SECONDS <= g


def test_the_seeds_old_budget_is_refused() -> None:
    # grace 70, preStop deadline 50, --shutdown-timeout 60: vLLM got at most 20 s.
    with pytest.raises(ValidationError) as err:
        pool_chart(drain_deadline_seconds=50, shutdown_timeout_seconds=60)
    (problem,) = err.value.problems
    assert (problem.field, problem.value) == ("termination_grace_period_seconds", 70)
    assert "= 115" in problem.expected


# --- With TLS, plain HTTP only redirects ----------------------------------------------------


def test_with_tls_the_http_listener_only_redirects() -> None:
    objs = serving_objs(tls_certificate_secret="vllm-tls", tls_hostname="llm.example.com")
    routes = [o for o in objs if o["kind"] == "HTTPRoute"]
    on_http = [
        r for r in routes if any(p["sectionName"] == "http" for p in r["spec"]["parentRefs"])
    ]
    (redirect,) = on_http
    for rule in redirect["spec"]["rules"]:
        assert "backendRefs" not in rule
        assert rule["filters"] == [
            {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
        ]
    api = find(objs, "HTTPRoute", "vllm-route")
    assert api["spec"]["parentRefs"] == [{"name": "vllm-gateway", "sectionName": "https"}]
    assert validate_objects(objs) == []
    # Without TLS nothing changes: the API on the HTTP listener, no redirect.
    plain = serving_objs()
    assert [r["metadata"]["name"] for r in plain if r["kind"] == "HTTPRoute"] == ["vllm-route"]


# --- PodMonitor and who may scrape ----------------------------------------------------------


@pytest.mark.parametrize(("release", "label"), [(None, "kube-prometheus-stack"), ("", None),
                                                ("prom", "prom")])  # fmt: skip
def test_pod_monitor_carries_the_release_kube_prometheus_stack_selects(
    release: str | None, label: str | None
) -> None:
    config: dict[str, Any] = {"pod_monitor": True}
    if release is not None:
        config["prometheus_release"] = release
    labels = find(serving_objs(**config), "PodMonitor", "vllm")["metadata"]["labels"]
    assert labels.get(contracts.PROMETHEUS_RELEASE_LABEL) == label


def test_prometheus_may_only_get_metrics() -> None:
    objs = serving_objs(pod_monitor=True)
    # The plain NetworkPolicy admits nobody at L4 (that would widen the L7 rule)...
    assert "ingress" not in find(objs, "NetworkPolicy", "vllm-ingress")["spec"]
    # ...and Prometheus' namespace gets GET /metrics only.
    policy = find(objs, "CiliumNetworkPolicy", "vllm-metrics")
    (rule,) = policy["spec"]["ingress"]
    assert rule["fromEndpoints"] == [
        {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "monitoring"}}
    ]
    assert rule["toPorts"] == [
        {
            "ports": [{"port": "8000", "protocol": "TCP"}],
            "rules": {"http": [{"method": "GET", "path": "/metrics"}]},
        }
    ]
    assert validate_objects(objs) == []


def test_metrics_only_policy_needs_cilium() -> None:
    with pytest.raises(ValidationError, match="metrics_from_namespaces"):
        pool_chart(metrics_from_namespaces=("monitoring",), cilium_gateway_policy=False)


# --- vLLM pods ------------------------------------------------------------------------------


@pytest.mark.parametrize("gpu_size", ["gpu-h100x1-80gb", "gpu-mi300x1-192gb"])
def test_vllm_pods_send_no_usage_stats(gpu_size: str) -> None:
    env = {
        e["name"]: e.get("value") for e in vllm_container(serving_objs(gpu_size=gpu_size))["env"]
    }
    assert env[contracts.VLLM_NO_USAGE_STATS_ENV] == "1"
    assert env[contracts.DO_NOT_TRACK_ENV] == "1"


def test_amd_pods_get_the_video_group_and_check_their_devices() -> None:
    chart, _ = pool_chart(gpu_size="gpu-mi300x8-1536gb")
    objs = list(cdk8s.Testing.synth(chart))
    spec = find(objs, "Deployment", "vllm")["spec"]["template"]["spec"]
    assert spec["securityContext"]["supplementalGroups"] == [contracts.DEBIAN_VIDEO_GID]
    check, wait = spec["initContainers"]
    assert (check["name"], wait["name"]) == ("check-gpu-devices", "wait-for-model")
    # Same GPUs as the vLLM container: the kubelet hands an init container's devices on.
    assert check["resources"]["limits"]["amd.com/gpu"] == 8
    assert check["command"][2] == script_text(CHECK_GPU_DEVICES)
    assert check["command"][4:] == list(contracts.AMD_GPU_DEVICE_PATHS)
    assert validate_objects(objs) == []
    chart, _ = pool_chart(gpu_size="gpu-mi300x1-192gb", supplemental_groups=(44, 109))
    spec = find(list(cdk8s.Testing.synth(chart)), "Deployment", "vllm")["spec"]["template"]["spec"]
    assert spec["securityContext"]["supplementalGroups"] == [44, 109]


def test_nvidia_pods_are_unchanged() -> None:
    chart, _ = pool_chart()
    spec = find(list(cdk8s.Testing.synth(chart)), "Deployment", "vllm")["spec"]["template"]["spec"]
    assert "supplementalGroups" not in spec["securityContext"]
    assert [c["name"] for c in spec["initContainers"]] == ["wait-for-model"]


@pytest.mark.parametrize(
    ("gpu_size", "image"),
    [
        ("gpu-mi300x1-192gb", contracts.VLLM_CUDA_IMAGE),
        ("gpu-h100x1-80gb", contracts.VLLM_ROCM_IMAGE),
        ("gpu-mi300x1-192gb", "vllm/vllm-openai:v0.17.1"),
    ],
)
def test_an_image_of_the_other_gpu_vendor_is_refused(gpu_size: str, image: str) -> None:
    with pytest.raises(ValidationError) as err:
        pool_chart(gpu_size=gpu_size, image=image)
    (problem,) = err.value.problems
    assert problem.field == "image" and "build, but gpu_size" in problem.expected


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
def test_gpu_device_check_fails_loudly(tmp_path: Path) -> None:
    script = script_text(CHECK_GPU_DEVICES)

    def run(kfd: Path, dri: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", script, "check", str(kfd), str(dri)],
            capture_output=True,
            text=True,
            check=False,
        )

    missing = run(tmp_path / "kfd", tmp_path / "dri")
    assert missing.returncode == 1 and "gave this container no GPU" in missing.stdout
    (tmp_path / "dri").mkdir()
    for dev in (tmp_path / "kfd", tmp_path / "dri" / "renderD128"):
        dev.write_text("")
    ok = run(tmp_path / "kfd", tmp_path / "dri")
    assert ok.returncode == 0 and "ok: " in ok.stdout
    if os.geteuid() != 0:  # root opens anything; the refusal needs an ordinary user
        (tmp_path / "dri" / "renderD128").chmod(0o000)
        denied = run(tmp_path / "kfd", tmp_path / "dri")
        assert denied.returncode == 1 and "supplemental_groups" in denied.stdout


# --- CLI: no prefix matching, no echoed secrets --------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["--hf-token", "hf_SeCrEt123"], ["--hf-token=hf_SeCrEt123"], ["--api-key", "hf_SeCrEt123"],
     ["--hf-token-secre", "hf_SeCrEt123"], ["synth", "hf_SeCrEt123"]],
)  # fmt: skip
def test_cli_never_abbreviates_nor_echoes_an_unknown_value(
    argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--k8s-outdir", str(tmp_path / "d")], env={})
    assert exit_.value.code == 2
    out = capsys.readouterr()
    assert "hf_SeCrEt123" not in out.err + out.out
    assert not (tmp_path / "d").exists()
    if argv[0].split("=")[0] == "--hf-token":
        assert "is not an input here" in out.err


def test_cli_still_takes_negative_numbers_as_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--replicas", "-1", "--layer", "k8s"], env={}) == 1
    assert "replicas: got -1" in capsys.readouterr().err


# --- Nothing repeats a contract -------------------------------------------------------------

# Files owned elsewhere that still spell a contract out (to move into contracts.py).
_NOT_YET_MIGRATED: set[str] = set()


def test_no_module_repeats_a_contract_value() -> None:
    """String literals (docstrings aside) equal to a contract that names something (an image, a
    label, a metric, an API group, a path) appear only in vllm_doks/contracts.py."""
    values = {
        v: k
        for k, v in vars(contracts).items()
        if k.isupper() and isinstance(v, str) and any(c in v for c in ":/.") and len(v) > 3
    }
    root = Path(contracts.__file__).parent
    hits = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == "contracts.py" or rel.startswith("_imports") or rel in _NOT_YET_MIGRATED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(body[i + 1].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            for body in [node.body]
            for i in range(-1, len(body) - 1)
            if isinstance(body[i + 1], ast.Expr) and isinstance(body[i + 1].value, ast.Constant)
        }
        hits += [
            f"{rel}:{node.lineno} {node.value!r} (contracts.{values[node.value]})"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and node.value in values
        ]
    assert hits == []


# --- The InferencePool both picker releases read ---------------------------------------------


def test_inference_pool_is_valid_for_the_v1_5_0_picker_too() -> None:
    """The picker is v1.5.0's; the CRD in tests/fixtures/crds is v1.6.0's (the same
    ``inference.networking.k8s.io/v1`` schema, except that v1.5.0 requires
    ``endpointPickerRef``). The pool must be valid under both."""
    import jsonschema
    import yaml

    from vllm_doks.k8s.inference_pool import VllmInferencePool, VllmInferencePoolProps

    crd = yaml.safe_load(
        (
            FIXTURES / "crds-v1.5.0" / "gateway-api-inference-extension-v1.5.0-inferencepools.yaml"
        ).read_text("utf-8")
    )
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = version["schema"]["openAPIV3Schema"]
    assert "endpointPickerRef" in schema["properties"]["spec"]["required"]
    chart, pool = pool_chart()
    VllmInferencePool(
        chart, "P", VllmInferencePoolProps(pool=pool, gateway_namespaces=("envoy-gateway-system",))
    )
    objs = list(cdk8s.Testing.synth(chart))
    (inference_pool,) = [o for o in objs if o["kind"] == "InferencePool"]
    assert inference_pool["apiVersion"] == contracts.INFERENCE_POOL_API_VERSION
    assert list(jsonschema.Draft7Validator(schema).iter_errors(inference_pool)) == []
    assert validate_objects(objs) == []  # and the v1.6.0 CRD

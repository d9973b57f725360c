"""Cold start and trusted weights, asserted on synthesized objects and the capacity plan:
pinned revisions, the verified-download marker the workers wait for, the smoke test, the
cold-start budget and the compile cache (issue 15)."""

from __future__ import annotations

import math
from typing import Any

import cdk8s
import pytest
from conftest import validate_objects
from support import QWEN, STORE, Obj, k8s_app

from vllm_doks import ValidationError
from vllm_doks.config import InfraOutputs, load_config
from vllm_doks.k8s import NfsModelStore, VllmWorkerPool, VllmWorkerPoolProps
from vllm_doks.k8s.scripts import FETCH_MODEL, script_text
from vllm_doks.k8s.serving_chart import VllmServingChart

COMMIT = "7ae557604adf67be50417f59c2c2f167def9a775"


def synth(chart: cdk8s.Chart) -> list[Obj]:
    return list(cdk8s.Testing.synth(chart))


def by_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def serving(**config: Any) -> tuple[VllmServingChart, list[Obj]]:
    cfg = load_config(overrides=config)
    chart = VllmServingChart(k8s_app(), "vllm", cfg, InfraOutputs.examples_for(cfg))
    return chart, synth(chart)


# --- pinned, verified downloads --------------------------------------------------------------


def test_a_pinned_revision_gets_its_own_directory_and_the_job_downloads_that_commit() -> None:
    chart = cdk8s.Chart(k8s_app(), "t")
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN, revision=COMMIT)
    pool = VllmWorkerPool(
        chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name="gpu")
    )
    assert model.revision == COMMIT
    assert model.model_dir == f"/models/Qwen2.5-0.5B-Instruct-{COMMIT[:12]}"
    assert model.marker_path == f"{model.model_dir}/.vllm-doks-verified"
    objs = synth(chart)
    assert validate_objects(objs) == []
    job = by_kind(objs, "Job")[0]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    # sh -c <script> <name> MODEL_ID MODEL_DIR workers stale heartbeat poll REVISION PROGRAM
    assert command[4:6] == [QWEN, model.model_dir]
    assert command[10] == COMMIT
    assert command[11] == script_text(FETCH_MODEL)
    # The workers wait for the verified marker of that directory and serve it.
    deployment = by_kind(objs, "Deployment")[0]
    init = deployment["spec"]["template"]["spec"]["initContainers"][0]
    assert model.marker_path in init["command"]
    assert pool.model is model


def test_an_unpinned_model_keeps_its_directory_and_passes_an_empty_revision() -> None:
    chart = cdk8s.Chart(k8s_app(), "t")
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    assert model.revision is None
    assert model.model_dir == "/models/Qwen2.5-0.5B-Instruct"
    job = by_kind(synth(chart), "Job")[0]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][10] == ""


@pytest.mark.parametrize("bad", ["main", "v1.0", COMMIT[:12], COMMIT.upper(), ""])
def test_a_revision_that_pins_nothing_is_refused_naming_the_field(bad: str) -> None:
    chart = cdk8s.Chart(k8s_app(), "t")
    with pytest.raises(ValidationError) as err:
        NfsModelStore(chart, "Models", STORE).add_model(QWEN, revision=bad)
    text = str(err.value)
    assert "revision" in text and "40-hex-digit commit" in text and repr(bad) in text


def test_model_revision_from_the_config_reaches_the_job() -> None:
    chart, objs = serving(model_revision=COMMIT)
    assert chart.model.revision == COMMIT
    job = by_kind(objs, "Job")[0]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][10] == COMMIT
    assert validate_objects(objs) == []


def test_a_bad_model_revision_in_the_config_is_a_preflight_problem() -> None:
    from vllm_doks.preflight import kubernetes_problems

    cfg = load_config(overrides={"model_revision": "main"})
    problems = kubernetes_problems(cfg, InfraOutputs.examples_for(cfg))
    assert [p.field for p in problems.items] == ["model_revision"]


# --- the smoke test in Stack 2 via Terraform --------------------------------------------------


def test_terraform_applies_the_smoke_test_last_waits_for_it_and_never_makes_servers_wait(
    tmp_path: Any,
) -> None:
    from support import kubernetes_stack_json

    chart, doc = kubernetes_stack_json(tmp_path, load_config())
    manifests = doc["resource"]["kubernetes_manifest"]
    assert chart.smoke_test is not None
    smoke = f"job-{chart.smoke_test.job_name}"
    assert manifests[smoke]["wait"] == {"condition": [{"type": "Complete", "status": "True"}]}
    deps = set(manifests[smoke]["depends_on"])
    for address in manifests:
        if address != smoke:
            assert f"kubernetes_manifest.{address}" in deps, address
            assert f"kubernetes_manifest.{smoke}" not in manifests[address].get("depends_on", [])
    # The download Job is still what the Deployment waits for.
    download = f"kubernetes_manifest.job-{chart.model.job_name}"
    assert download in manifests["deployment-vllm"]["depends_on"]


# --- the cold-start budget --------------------------------------------------------------------


def test_cold_start_budget_phases_add_up_and_the_probe_window_follows_it() -> None:
    from vllm_doks.capacity import ClusterPlan, PoolPlan, plan_capacity
    from vllm_doks.cold_start import ColdStartFigures

    figures = ColdStartFigures(
        node_provisioning_seconds=300,
        image_download_gib=10.0,
        image_pull_mb_per_s=100.0,
        compile_cold_seconds=200,
        compile_warm_seconds=5,
        engine_start_seconds=40,
        readiness_period_seconds=10,
    )

    def pool(compile_cache: bool) -> Any:
        plan = ClusterPlan(
            pools=[PoolPlan(name="p", model_id=QWEN, gpu_size="gpu-h100x8-640gb")],
            gpu_node_count=2,
            nfs_size_gb=1000,
            nfs_read_mb_per_s=64.0,
            cold_start=figures,
            compile_cache=compile_cache,
        )
        return plan_capacity(plan).pool("p")

    cached = pool(compile_cache=True)
    budget = cached.cold_start
    assert budget is not None and cached.checkpoint_gb is not None
    read = budget.weights_read_seconds
    # The checkpoint (~0.9 GiB of bf16) at 64 MiB/s, rounded up.
    assert read == math.ceil(cached.checkpoint_gb * 1024 / 64) and read > 10
    assert budget.image_pull_seconds == 103  # 10 GiB at 100 MiB/s
    assert budget.cold_seconds == 300 + 103 + read + 200 + 40 + 10
    assert budget.restart_seconds == read + 5 + 40 + 10
    # The startup probe covers a cold compile from container start, not the node or image.
    assert cached.startup_window_seconds == read + 200 + 40 + 10
    # Without the compile cache a restart compiles cold again.
    uncached = pool(compile_cache=False).cold_start
    assert uncached is not None and uncached.restart_seconds == read + 200 + 40 + 10
    assert f"= {budget.cold_seconds}s on a new node" in budget.summary()


def test_the_cold_start_budget_is_in_the_json_and_the_chart_probe_covers_it() -> None:
    import json

    chart, objs = serving(model_id="Qwen/Qwen2.5-7B-Instruct")
    assert chart.capacity is not None
    data = json.loads(chart.capacity.to_json())
    cold = data["pools"][0]["cold_start"]
    assert cold["cold_seconds"] > cold["restart_seconds"] > 0
    assert cold["node_provisioning_seconds"] == 900
    deployment = by_kind(objs, "Deployment")[0]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    allowed = (
        probe.get("initialDelaySeconds", 0) + probe["periodSeconds"] * probe["failureThreshold"]
    )
    assert allowed >= cold["startup_window_seconds"]


# --- --safetensors-load-strategy by case ------------------------------------------------------


def test_prefetch_when_the_checkpoint_fits_the_page_cache_else_eager() -> None:
    from vllm_doks.weights import choose_load_strategy

    common: dict[str, Any] = {
        "tensor_parallel_size": 8,
        "shm_gib": 16.0,
        "shard_gib": 4.66,
        "process_baseline_gib": 3.0,
    }
    fits = choose_load_strategy(checkpoint_gib=135.0, host_ram_gib=1920.0, **common)
    assert fits.strategy == "prefetch"
    # Workers, one shard each while loading from the page cache, /dev/shm and the checkpoint.
    assert fits.host_ram_needed_gib == pytest.approx(8 * 4.66 + 8 * 3.0 + 16 + 135)
    tight = choose_load_strategy(checkpoint_gib=700.0, host_ram_gib=480.0, **common)
    assert tight.strategy == "eager"
    assert "read twice" in tight.reason
    # Eager holds a file's bytes and its tensors at once in every worker.
    assert tight.host_ram_needed_gib == pytest.approx(8 * 2 * 4.66 + 8 * 3.0 + 16)
    unknown = choose_load_strategy(checkpoint_gib=1.0, host_ram_gib=None, **common)
    assert unknown.strategy == "eager"


def test_the_flag_exists_in_vllm_0_18_and_the_chart_passes_the_plans_choice() -> None:
    import json

    from conftest import REPO

    options = json.loads((REPO / "tests/fixtures/vllm-0.18.0-serve-options.json").read_text())
    assert "--safetensors-load-strategy" in json.dumps(options)
    chart, objs = serving()
    assert chart.capacity is not None
    planned = chart.capacity.pools[0].load_strategy
    assert planned == "prefetch"  # 1 GiB of 0.5B weights on a 240 GiB node
    args = by_kind(objs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--safetensors-load-strategy") + 1] == planned


def test_a_strategy_vllm_would_read_randomly_from_nfs_is_refused() -> None:
    chart = cdk8s.Chart(k8s_app(), "t")
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    with pytest.raises(ValidationError) as err:
        VllmWorkerPool(
            chart,
            "Workers",
            VllmWorkerPoolProps(
                model=model, gpu_node_pool_name="gpu", safetensors_load_strategy="lazy"
            ),
        )
    assert "safetensors_load_strategy" in str(err.value) and "'lazy'" in str(err.value)


def test_each_model_of_a_models_list_pins_its_own_revision(tmp_path: Any) -> None:
    import yaml

    other = "b" * 40
    path = tmp_path / "vllm.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "models": [
                    {"id": QWEN, "revision": COMMIT},
                    {"id": "Qwen/Qwen2.5-1.5B-Instruct", "revision": other},
                ]
            }
        )
    )
    cfg = load_config(path)
    chart = VllmServingChart(k8s_app(), "vllm", cfg, InfraOutputs.examples_for(cfg))
    assert [p.model.revision for p in chart.pools] == [COMMIT, other]
    from vllm_doks.preflight import kubernetes_problems

    path.write_text(yaml.safe_dump({"models": [{"id": QWEN, "revision": "main"}]}))
    bad = load_config(path)
    fields = [p.field for p in kubernetes_problems(bad, InfraOutputs.examples_for(bad)).items]
    assert fields == ["models[0].revision"]

"""One GpuPoolRef (the node pool's name and size) for the download and the pods, instead of the
name and the size given twice; the old keywords keep working with the same output. Stack 1
hands the size off with the name."""

from __future__ import annotations

import json

import pytest
from support import QWEN, STACK_ONE_OUTPUTS, STORE, new_chart, synth

from vllm_doks import ValidationError
from vllm_doks.config import ArchitectureConfig, parse_infra_outputs
from vllm_doks.handoff import HANDOFF_KEYS, GpuPoolRef
from vllm_doks.k8s import NfsModelStore, VllmWorkerPool, VllmWorkerPoolProps

AMD = GpuPoolRef("vllm-gpu-mi300x1", "gpu-mi300x1-192gb")


def _with_ref(ref: GpuPoolRef) -> list[dict[str, object]]:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN, gpu_pool=ref)
    VllmWorkerPool(chart, "Workers", VllmWorkerPoolProps(model=model, gpu_pool=ref))
    return synth(chart)


def _with_keywords(name: str, size: str) -> list[dict[str, object]]:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", STORE).add_model(
        QWEN, node_pool_name=name, gpu_size=size
    )
    VllmWorkerPool(
        chart, "Workers", VllmWorkerPoolProps(model=model, gpu_node_pool_name=name, gpu_size=size)
    )
    return synth(chart)


def test_a_ref_renders_what_the_name_and_size_keywords_render() -> None:
    objs = _with_ref(AMD)
    assert objs == _with_keywords(AMD.name, "gpu-mi300x1-192gb")
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]  # type: ignore[index]
    assert pod["nodeSelector"] == {"doks.digitalocean.com/node-pool": AMD.name}
    assert [t["key"] for t in pod["tolerations"]] == ["amd.com/gpu"]


def test_a_ref_without_size_takes_the_default_size() -> None:
    assert _with_ref(GpuPoolRef("gpu")) == _with_keywords("gpu", "gpu-h100x1-80gb")


def test_the_pool_hands_out_its_resolved_ref() -> None:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    pool = VllmWorkerPool(chart, "Workers", VllmWorkerPoolProps(model=model, gpu_pool=AMD))
    assert pool.gpu_pool == AMD
    assert pool.gpu_node_pool_name == AMD.name
    assert pool.gpu_size.slug == AMD.size


@pytest.mark.parametrize(
    ("keywords", "fields"),
    [
        ({"gpu_pool": AMD, "gpu_node_pool_name": "other"}, {"gpu_node_pool_name"}),
        ({"gpu_pool": AMD, "gpu_size": "gpu-h100x1-80gb"}, {"gpu_size"}),
        ({}, {"gpu_node_pool_name"}),
        ({"gpu_pool": "vllm-gpu"}, {"gpu_pool"}),
    ],
)
def test_the_pool_refuses_a_ref_with_the_keywords_it_replaces(
    keywords: dict[str, object], fields: set[str]
) -> None:
    chart = new_chart()
    model = NfsModelStore(chart, "Models", STORE).add_model(QWEN)
    with pytest.raises(ValidationError) as err:
        VllmWorkerPool(chart, "Workers", VllmWorkerPoolProps(model=model, **keywords))  # type: ignore[arg-type]
    assert {p.field for p in err.value.problems} == fields


def test_add_model_refuses_a_ref_with_a_node_pool_name() -> None:
    store = NfsModelStore(new_chart(), "Models", STORE)
    with pytest.raises(ValidationError) as err:
        store.add_model(QWEN, gpu_pool=AMD, node_pool_name="other", gpu_size="gpu-h100x1-80gb")
    assert {p.field for p in err.value.problems} == {"node_pool_name", "gpu_size"}


OUTPUTS = {**STACK_ONE_OUTPUTS, "gpu_node_pool_name": "prod-gpu-mi300x1"}


def test_stack_ones_outputs_hand_off_the_pools_size() -> None:
    with_size = {**OUTPUTS, "gpu_node_pool_size": "gpu-mi300x1-192gb"}
    parsed = parse_infra_outputs(json.dumps({"vllm-infra": with_size}))
    assert parsed.gpu_pool == GpuPoolRef("prod-gpu-mi300x1", "gpu-mi300x1-192gb")
    assert "vllm-infra.gpu_node_pool_size" in parsed.handoff_table()


def test_outputs_of_an_older_stack_one_without_the_size_still_parse() -> None:
    parsed = parse_infra_outputs(json.dumps(OUTPUTS))
    assert parsed.gpu_pool == GpuPoolRef("prod-gpu-mi300x1", None)
    assert "gpu_node_pool_size" not in parsed.handoff_table()


def test_a_size_other_than_the_configs_is_reported_and_the_outputs_win() -> None:
    config = ArchitectureConfig(gpu_size="gpu-h100x1-80gb")
    parsed = parse_infra_outputs(json.dumps({**OUTPUTS, "gpu_node_pool_size": "gpu-mi300x1-192gb"}))
    assert any(c.startswith("gpu_node_pool_size:") for c in parsed.conflicts(config))


def test_the_cloud_layer_hands_off_the_size_as_a_token() -> None:
    from vllm_doks.cloud.infra_props import OUTPUT_DESCRIPTIONS

    assert "gpu_node_pool_size" in OUTPUT_DESCRIPTIONS
    assert "gpu_node_pool_size" in HANDOFF_KEYS

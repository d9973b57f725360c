"""`same_named`: the app's wiring passes every same-named config input to the props."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from vllm_doks.config import load_config
from vllm_doks.props import same_named
from vllm_doks.wiring import infra_props


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Props:
    a: int
    b: str = "x"
    c: int = 0
    derived: int = dataclasses.field(init=False, default=1)


def test_takes_same_named_fields_then_overrides() -> None:
    source = SimpleNamespace(a=1, b="y", d="not a field", derived=5)
    assert same_named(source, _Props) == {"a": 1, "b": "y"}
    assert same_named(source, _Props, b="z", c=3) == {"a": 1, "b": "z", "c": 3}


def test_an_override_that_names_no_field_is_refused() -> None:
    with pytest.raises(TypeError, match="_Props has no field typo"):
        same_named(SimpleNamespace(a=1), _Props, typo=2)


def test_every_config_input_of_stack_1_reaches_its_props() -> None:
    config = load_config(
        None, env={}, overrides={"region": "atl1", "nfs_size_gb": 2000, "gpu_node_count": 3}
    )
    props = infra_props(config)
    assert (props.region, props.nfs_size_gb, props.gpu_node_count) == ("atl1", 2000, 3)
    for f in dataclasses.fields(props):
        if hasattr(config, f.name) and f.name != "gpu_autoscale_max_nodes":  # 0 means None
            assert getattr(props, f.name) == getattr(config, f.name), f.name

"""The seed's Stack 2 outputs, computed from the constructs that produce them."""

from __future__ import annotations

from vllm_doks.handoff import STACK2_OUTPUT_DESCRIPTIONS
from vllm_doks.k8s.gateway_endpoint import GatewayEndpoint
from vllm_doks.k8s.vllm_worker_pool import VllmWorkerPool

#: The seed's Stack 2 output names, in its order, with its descriptions.
STACK_OUTPUT_DESCRIPTIONS = STACK2_OUTPUT_DESCRIPTIONS


def stack_outputs(pool: VllmWorkerPool, endpoint: GatewayEndpoint) -> dict[str, str | int]:
    """The seed's eight Stack 2 outputs for ``pool`` served through ``endpoint``.

    ``model_name`` is the name clients send (the served model name) and ``quantization`` is
    ``""`` when none is used, both as the seed reports them.
    """
    return {
        "namespace": pool.namespace,
        "service_name": pool.service_name,
        "service_port": pool.service_port,
        "gateway_name": endpoint.gateway_name,
        "model_id": pool.model_id,
        "model_name": pool.served_model_name,
        "replicas": pool.replicas,
        "quantization": pool.quantization or "",
    }

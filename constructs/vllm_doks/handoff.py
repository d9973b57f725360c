"""The hand-off between the layers, in the core: what Stack 1 (the cloud layer) gives Stack 2
(the Kubernetes layer), and what Stack 2 reports. Both layers and the app import it from here,
so neither layer imports the other or the app's configuration."""

from __future__ import annotations

#: Descriptions of the seed's Stack 2 outputs, in the seed's order.
STACK2_OUTPUT_DESCRIPTIONS: dict[str, str] = {
    "namespace": "Kubernetes namespace where vLLM is deployed",
    "service_name": "Name of the vLLM ClusterIP service",
    "service_port": "Port of the vLLM service",
    "gateway_name": "Name of the Gateway resource for external access",
    "model_id": "The HuggingFace model ID being served",
    "model_name": "The model name used for inference requests",
    "replicas": "Number of vLLM replicas deployed",
    "quantization": "Quantization method used for model inference",
}

"""The CRD bindings ``cdk8s import`` generated (``imports/``, shipped as
``vllm_doks._imports``), made the fast way (:class:`~vllm_doks.k8s.objects.Unchecked`) and
each loaded only when first used: loading one costs tens of milliseconds, and most charts use
few of them. ``keda_api.ScaledObjectSpec(...)`` is KEDA's ``ScaledObjectSpec``, and so on.
mypy cannot see the bindings (setuptools maps them from ``imports/`` at install time only), so
these are typed ``Any`` either way."""

from vllm_doks.k8s.objects import Unchecked

#: Gateway API v1.3.0 (Gateway, HTTPRoute).
gateway_api = Unchecked("vllm_doks._imports.io.k8s.networking.gateway")
#: KEDA (ScaledObject).
keda_api = Unchecked("vllm_doks._imports.sh.keda")
#: Prometheus Operator (PodMonitor).
monitoring_api = Unchecked("vllm_doks._imports.com.coreos.monitoring")
#: Gateway API Inference Extension v1.6.0 (InferencePool).
inference_api = Unchecked("vllm_doks._imports.io.k8s.networking.inference")

"""Generated cdk8s bindings (see cdk8s.yaml); shipped as vllm_doks._imports."""

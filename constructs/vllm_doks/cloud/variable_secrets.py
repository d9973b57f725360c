"""Secrets the Terraform variant of Stack 2 fills from sensitive Terraform variables: where
each goes, and the variable + ``kubernetes_secret_v1`` pair. A value is never written into the
synthesized JSON (only ``${var.<name>}``); it ends up in Terraform state, marked sensitive.

Loads the Kubernetes provider bindings (seconds) only when a Secret is made; only
``kubernetes_stack`` imports this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdktf import ITerraformDependable, TerraformVariable, TerraformVariableValidationConfig
from constructs import Construct

from vllm_doks import contracts
from vllm_doks.validation import Problems, check_dns_label, check_dns_subdomain

if TYPE_CHECKING:
    from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1

#: Name of the Terraform variable holding the Hugging Face token (the seed's ``hf_token``).
HF_TOKEN_VARIABLE = "hf_token"

#: Name of the (required, sensitive) Terraform variable holding the endpoint's API key.
API_KEY_VARIABLE = "vllm_api_key"

_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


@dataclass(frozen=True, kw_only=True)
class SecretFromVariable:
    """Where a Secret that the stack fills from a sensitive Terraform variable goes."""

    namespace: str = "vllm"
    """Namespace of the Secret. Default ``vllm``."""
    name: str = ""
    key: str = ""

    def problems(self, field_prefix: str) -> Problems:
        problems = Problems()
        check_dns_label(problems, f"{field_prefix}.namespace", self.namespace)
        check_dns_subdomain(problems, f"{field_prefix}.name", self.name)
        problems.check(
            isinstance(self.key, str) and bool(_SECRET_KEY.match(self.key)),
            f"{field_prefix}.key",
            self.key,
            "must be a Secret data key: letters, digits, '-', '_' and '.'",
        )
        return problems


@dataclass(frozen=True, kw_only=True)
class HfTokenSecret(SecretFromVariable):
    """Where the optional Hugging Face token Secret goes (the seed's ``hf-token``), created
    from ``var.hf_token`` only when that is set."""

    name: str = "hf-token"
    """Name of the Secret the download Job and the pods read. Default ``hf-token``."""
    key: str = contracts.HF_TOKEN_ENV
    """Data key holding the token. Default ``HF_TOKEN``."""


@dataclass(frozen=True, kw_only=True)
class ApiKeySecret(SecretFromVariable):
    """Where the endpoint's API key Secret goes (the chart's ``vllm-api-key``), created from
    the required sensitive variable ``var.vllm_api_key``: the stack owns it, like the
    namespace it lives in, so nothing has to be created with kubectl beforehand."""

    name: str = "vllm-api-key"
    """Name of the Secret the vLLM pods read their key from. Default ``vllm-api-key``."""
    key: str = contracts.VLLM_API_KEY_ENV
    """Data key holding the key. Default ``VLLM_API_KEY``."""


@dataclass(frozen=True)
class VariableSecret:
    """One Secret the stack fills from a sensitive variable, and how it is named."""

    location: SecretFromVariable
    field: str
    """Props field that configures it (for error messages)."""
    variable: str
    description: str
    construct_id: str
    optional: bool
    """Created only when the variable is not empty (the variable defaults to empty)."""

    @property
    def variable_options(self) -> dict[str, Any]:
        if self.optional:
            return {"default": ""}
        return {
            # Required and never null: Terraform refuses to plan without it, and an empty
            # key would leave the endpoint unusable rather than open (vLLM needs the Secret).
            "nullable": False,
            "validation": [
                TerraformVariableValidationConfig(
                    condition=f'${{trimspace(var.{self.variable}) != ""}}',
                    error_message=f"{self.variable} must not be empty: clients send it as "
                    f"'Authorization: Bearer <key>'.",
                )
            ],
        }

    @classmethod
    def hf_token(cls, location: HfTokenSecret | None) -> VariableSecret | None:
        if location is None:
            return None
        return cls(
            location=location,
            field="hf_token_secret",
            variable=HF_TOKEN_VARIABLE,
            description="HuggingFace API token for gated models",
            construct_id="hf_token_secret",
            optional=True,
        )

    @classmethod
    def api_key(cls, location: ApiKeySecret | None) -> VariableSecret | None:
        if location is None:
            return None
        return cls(
            location=location,
            field="api_key_secret",
            variable=API_KEY_VARIABLE,
            description="API key of the vLLM endpoint (clients send 'Authorization: Bearer "
            "<key>'); stored in the API key Secret",
            construct_id="api_key_secret",
            optional=False,
        )


def add_variable_secret(
    scope: Construct, spec: VariableSecret, after: ITerraformDependable | None
) -> tuple[TerraformVariable, SecretV1]:
    """The sensitive variable and the Secret filled from it, created after ``after`` (the
    Secret's Namespace object, when the stack has one)."""
    variable = TerraformVariable(
        scope,
        spec.variable,
        type="string",
        sensitive=True,
        description=spec.description,
        **spec.variable_options,
    )
    # Here, not at the top: the provider's bindings take seconds to load (see kubernetes_stack).
    from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata

    location = spec.location
    secret = SecretV1(
        scope,
        spec.construct_id,
        metadata=SecretV1Metadata(name=location.name, namespace=location.namespace),
        # kubernetes_secret_v1 base64-encodes and marks ``data`` sensitive itself; the
        # JSON holds only the variable reference, never the value.
        data={location.key: variable.string_value},
        type="Opaque",
        depends_on=[after] if after is not None else None,
    )
    if spec.optional:
        # Only when a value was given (the seed: "(Optional) Creates Kubernetes secret").
        # Written as an override: cdktf renders the literal "" of Op.neq as `undefined`.
        secret.add_override("count", f'${{var.{spec.variable} != "" ? 1 : 0}}')
    return variable, secret

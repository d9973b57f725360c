"""ModelBucket: a Spaces bucket to download models from, and a key that can only read it.

Optional source of the model download (see :class:`vllm_doks.weights.SpacesSource`): instead
of every cluster pulling from the Hugging Face Hub (rate limits, an outside dependency at
every scale-up), the weights are uploaded once, with their sha256 manifest, to a bucket in the
account. Stack 1 creates:

* ``digitalocean_spaces_bucket.models``: private (ACL ``private``), never destroyed while it
  holds objects (``force_destroy`` off: the weights outlive a ``destroy`` of the cluster);
* ``digitalocean_spaces_key.models_read``: a Spaces access key whose only grant is ``read`` on
  that bucket (digitalocean/digitalocean 2.99.1: ``grant { bucket, permission }``, permission
  ``read``/``readwrite``/``fullaccess``; checked with ``terraform providers schema -json``
  against the provider in the offline mirror, and present in the 2.71.0 bindings).

Outputs: ``model_bucket_name``, ``model_bucket_region``, ``model_bucket_endpoint`` (the
bucket's own ``https://<bucket>.<region>.digitaloceanspaces.com``) and the key pair as the
*sensitive* outputs ``model_bucket_access_key_id`` / ``model_bucket_secret_key``: Terraform
prints them as ``(sensitive value)``, ``cdktf deploy --outputs-file`` leaves them out, and the
README pipes ``terraform output -raw`` straight into ``kubectl create secret`` so the secret
is never shown. It does live in Stack 1's state (as every Terraform-created credential does):
keep that state private (the Spaces state backend is).
"""

from __future__ import annotations

from cdktf import TerraformOutput
from cdktf_cdktf_provider_digitalocean.spaces_bucket import SpacesBucket
from cdktf_cdktf_provider_digitalocean.spaces_key import SpacesKey, SpacesKeyGrant
from constructs import Construct

from vllm_doks import contracts
from vllm_doks.cloud.infra_props import (
    MODEL_BUCKET_OUTPUT_DESCRIPTIONS,
    MODEL_BUCKET_SENSITIVE_OUTPUTS,
    ModelBucketProps,
)
from vllm_doks.props import takes_props


@takes_props(ModelBucketProps)
class ModelBucket(Construct):
    """A private Spaces bucket for model weights and a key that may only read it, with the
    outputs the download needs (see the module doc)."""

    def __init__(self, scope: Construct, id: str, props: ModelBucketProps) -> None:
        super().__init__(scope, id)
        problems = props.problems()
        problems.where = lambda: self.node.path
        problems.raise_if_any()
        self.props = props
        self.bucket = SpacesBucket(
            self, "Bucket", name=props.name, region=props.region, acl="private"
        )
        # Stable addresses, set before any output reads an attribute (cdktf then locks them).
        self.bucket.override_logical_id("models")
        self.read_key = SpacesKey(
            self,
            "ReadKey",
            name=f"{props.name}-read",
            grant=[
                SpacesKeyGrant(
                    bucket=self.bucket.name, permission=contracts.SPACES_KEY_READ_PERMISSION
                )
            ],
        )
        self.read_key.override_logical_id("models_read")
        values = {
            "model_bucket_name": self.bucket.name,
            "model_bucket_region": props.region,
            "model_bucket_endpoint": f"https://{self.bucket.bucket_domain_name}",
            "model_bucket_access_key_id": self.read_key.access_key,
            "model_bucket_secret_key": self.read_key.secret_key,
        }
        self.outputs: dict[str, TerraformOutput] = {}
        for name, description in MODEL_BUCKET_OUTPUT_DESCRIPTIONS.items():
            output = TerraformOutput(
                self,
                name,
                value=values[name],
                description=description,
                sensitive=name in MODEL_BUCKET_SENSITIVE_OUTPUTS,
            )
            output.override_logical_id(name)
            self.outputs[name] = output

    @property
    def bucket_name(self) -> str:
        return self.bucket.name

"""Stack 1 as Stack 2 sees it: its outputs read from its Terraform state, and the Kubernetes
provider pointed at the DOKS cluster it created.

Loads the provider bindings (seconds) only when a function here builds something; only
``kubernetes_stack`` imports this module, and nothing imports that eagerly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING

import cdk8s
from cdktf import (
    DataTerraformRemoteStateLocal,
    DataTerraformRemoteStateS3,
    Fn,
    TerraformRemoteState,
)
from constructs import Construct

from vllm_doks.cloud.infra_props import SpacesStateBackend
from vllm_doks.cloud.state_backend import portable_local_state_path
from vllm_doks.handoff import StackOneOutputs

if TYPE_CHECKING:
    from cdktf_cdktf_provider_digitalocean.data_digitalocean_kubernetes_cluster import (
        DataDigitaloceanKubernetesCluster,
    )

#: Construct id of the remote-state data source: ``data.terraform_remote_state.infra``.
REMOTE_STATE_ID = "infra"


@dataclass(frozen=True)
class StackOneValues(StackOneOutputs[str]):
    """Stack 1's outputs as Terraform references, for a chart builder to place in objects: the
    core hand-off (``vllm_doks.handoff.StackOneOutputs``) made of tokens.

    Each is a cdktf token *string* (``${TfToken[...]}``) that becomes
    ``${data.terraform_remote_state.infra.outputs.<name>}`` in the synthesized JSON. Use them
    only as (parts of) strings: ``f"{values.nfs_size_gb}Gi"`` works, ``int(...)`` cannot (the
    size is a string token: a number token would not survive cdk8s).
    """

    _: KW_ONLY
    cluster_name: str
    """Name of the DOKS cluster, as a token. No default."""
    remote_state: TerraformRemoteState = field(repr=False, compare=False)
    """The remote-state data source the tokens read. No default."""

    def output(self, name: str) -> str:
        """Any other Stack 1 output, as a string token."""
        return self.remote_state.get_string(name)


#: Builds the Kubernetes objects (one or more cdk8s Charts) into the given App.
ChartBuilder = Callable[[cdk8s.App, StackOneValues], object]


def read_stack_one(
    scope: Construct, infra_state: SpacesStateBackend | None, infra_stack_name: str
) -> StackOneValues:
    """Stack 1's state as ``data.terraform_remote_state.infra``, and its outputs as values."""
    remote_state: TerraformRemoteState
    if infra_state is None:
        # Relative to this stack's working dir, like Stack 1's own portable backend: the
        # JSON stays free of machine paths and both land in the project root.
        remote_state = DataTerraformRemoteStateLocal(
            scope, REMOTE_STATE_ID, path=portable_local_state_path(infra_stack_name)
        )
    else:
        # Same S3 settings as Stack 1's backend (state_backend.apply_state_backend); the
        # Spaces access key comes from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY at plan time.
        remote_state = DataTerraformRemoteStateS3(
            scope, REMOTE_STATE_ID, **infra_state.s3_settings()
        )
    return StackOneValues(
        cluster_name=remote_state.get_string("cluster_name"),
        nfs_host=remote_state.get_string("nfs_host"),
        nfs_mount_path=remote_state.get_string("nfs_mount_path"),
        nfs_size_gb=remote_state.get_string("nfs_size_gb"),
        gpu_node_pool_name=remote_state.get_string("gpu_node_pool_name"),
        gpu_node_pool_size=remote_state.get_string("gpu_node_pool_size"),
        remote_state=remote_state,
    )


def kubernetes_provider_for(
    scope: Construct, cluster_name: str
) -> DataDigitaloceanKubernetesCluster:
    """The Kubernetes provider on the named DOKS cluster; returns the cluster data source.

    The standard DOKS pattern: a short-lived token from the cluster's kubeconfig, read at plan
    time, so no kubeconfig file is needed on the machine running Terraform.
    """
    # Here, not at the top: the providers' bindings take seconds to load (see kubernetes_stack).
    from cdktf_cdktf_provider_digitalocean.data_digitalocean_kubernetes_cluster import (
        DataDigitaloceanKubernetesCluster,
    )
    from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider

    cluster = DataDigitaloceanKubernetesCluster(scope, "cluster", name=cluster_name)
    kube_config = cluster.kube_config.get(0)
    KubernetesProvider(
        scope,
        "kubernetes",
        host=cluster.endpoint,
        token=kube_config.token,
        cluster_ca_certificate=Fn.base64decode(kube_config.cluster_ca_certificate),
    )
    return cluster

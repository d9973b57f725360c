"""The objects the contract fixes introduced, applied to a real Kubernetes API server with the
upstream CRDs installed (their structural schemas, CEL rules and defaults apply): the HTTPS
redirect route, the router's exact /v1/models rule, the L7 metrics CiliumNetworkPolicy, the
PodMonitor with its release label and the v1.5.0 picker's InferencePool.

Needs the envtest binaries (../shared/envtest, ``KUBEBUILDER_ASSETS``); skipped without them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cdk8s
import pytest
import yaml

from vllm_doks.config import ArchitectureConfig, InfraOutputs
from vllm_doks.k8s import GatewayEndpoint, GatewayEndpointProps
from vllm_doks.k8s.inference_pool import VllmInferencePool, VllmInferencePoolProps
from vllm_doks.k8s.prefix_router import PrefixAwareRouter, PrefixAwareRouterProps
from vllm_doks.k8s.serving_chart import VllmServingChart

pytestmark = pytest.mark.real

CRD_DIR = Path(__file__).parent / "fixtures" / "crds"
DEFAULT_ASSETS = Path("/root/.cache/envtest/k8s/1.34.9-linux-amd64")


def _assets() -> Path | None:
    env = os.environ.get("KUBEBUILDER_ASSETS")
    path = Path(env) if env else DEFAULT_ASSETS
    ok = all((path / b).exists() for b in ("etcd", "kube-apiserver", "kubectl"))
    return path if ok else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    assets = _assets()
    if assets is None or shutil.which("openssl") is None:
        pytest.skip("needs envtest binaries (KUBEBUILDER_ASSETS, ../shared/envtest) and openssl")
    d = tmp_path_factory.mktemp("apiserver")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))  # fmt: skip
    for name, subj, ext in (
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1"),
        ("admin", "/O=system:masters/CN=admin", "extendedKeyUsage=clientAuth"),
    ):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subj,
                 "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"),
                 "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "1",
                 "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.crt"))  # fmt: skip
    _openssl("genrsa", "-out", str(d / "sa.key"), "2048")
    etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    str(assets / "etcd"),
                    "--data-dir",
                    str(d / "etcd"),
                    "--listen-client-urls",
                    f"http://127.0.0.1:{etcd_port}",
                    "--advertise-client-urls",
                    f"http://127.0.0.1:{etcd_port}",
                    "--listen-peer-urls",
                    f"http://127.0.0.1:{peer_port}",
                    "--initial-advertise-peer-urls",
                    f"http://127.0.0.1:{peer_port}",
                    "--initial-cluster",
                    f"default=http://127.0.0.1:{peer_port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    str(assets / "kube-apiserver"),
                    "--bind-address=127.0.0.1",
                    f"--secure-port={api_port}",
                    f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                    f"--tls-cert-file={d / 'server.crt'}",
                    f"--tls-private-key-file={d / 'server.key'}",
                    f"--client-ca-file={d / 'ca.crt'}",
                    "--service-account-issuer=https://test",
                    f"--service-account-key-file={d / 'sa.key'}",
                    f"--service-account-signing-key-file={d / 'sa.key'}",
                    "--service-cluster-ip-range=192.168.0.0/22",
                    "--authorization-mode=Node,RBAC",
                    "--allow-privileged=true",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        kubeconfig = d / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "t",
                            "cluster": {
                                "server": f"https://127.0.0.1:{api_port}",
                                "certificate-authority": str(d / "ca.crt"),
                            },
                        }
                    ],
                    "users": [
                        {
                            "name": "a",
                            "user": {
                                "client-certificate": str(d / "admin.crt"),
                                "client-key": str(d / "admin.key"),
                            },
                        }
                    ],
                    "contexts": [{"name": "t", "context": {"cluster": "t", "user": "a"}}],
                    "current-context": "t",
                }
            )
        )
        cmd = [str(assets / "kubectl"), f"--kubeconfig={kubeconfig}"]
        deadline = time.monotonic() + 90
        while subprocess.run([*cmd, "get", "--raw=/readyz"], capture_output=True).returncode:
            if time.monotonic() > deadline:
                pytest.fail("kube-apiserver did not become ready in 90 s")
            time.sleep(1)
        subprocess.run([*cmd, "apply", "--server-side", "-f", str(CRD_DIR)], check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run([*cmd, "wait", "--for=condition=Established", "crd", "--all",
                        "--timeout=60s"], check=True, capture_output=True)  # fmt: skip
        yield cmd
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _apply(kubectl: list[str], objs: list[dict[str, Any]], tmp_path: Path) -> str:
    path = tmp_path / "objs.yaml"
    path.write_text(yaml.safe_dump_all(objs, sort_keys=False))
    done = subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


INFRA = InfraOutputs(
    nfs_host="10.200.0.5", nfs_mount_path="/1234567/abcd", nfs_size_gb=1000,
    gpu_node_pool_name="my-vllm-gpu-h100",
)  # fmt: skip


def test_https_pod_monitor_and_metrics_policy_are_accepted(
    kubectl: list[str], tmp_path: Path
) -> None:
    config = ArchitectureConfig(
        namespace="real-a",
        tls_certificate_secret="vllm-tls",
        tls_hostname="llm.example.com",
        pod_monitor=True,
        autoscaling=True,
        autoscaling_max_replicas=2,
    )
    chart = VllmServingChart(cdk8s.Testing.app(), "vllm", config, INFRA)
    objs = list(cdk8s.Testing.synth(chart))
    # The PersistentVolume is cluster-scoped and named like the other test's: keep this one.
    out = _apply(kubectl, objs, tmp_path)
    assert "httproute.gateway.networking.k8s.io/vllm-gateway-https-redirect" in out
    assert "ciliumnetworkpolicy.cilium.io/vllm-metrics" in out
    assert "podmonitor.monitoring.coreos.com/vllm" in out


def test_router_models_rule_and_inference_pool_are_accepted(
    kubectl: list[str], tmp_path: Path
) -> None:
    config = ArchitectureConfig(namespace="real-b")
    infra = InfraOutputs(
        nfs_host="10.200.0.6", nfs_mount_path="/other", nfs_size_gb=1000,
        gpu_node_pool_name="my-vllm-gpu-h100",
    )  # fmt: skip
    chart = VllmServingChart(cdk8s.Testing.app(), "vllm", config, infra)
    router = PrefixAwareRouter(chart, "Router", PrefixAwareRouterProps(pools=[chart.pool]))
    chart.endpoint.route_to(
        chart.pool, backend=router, path_prefix="/r/v1", rewrite_prefix_to="/v1", route_name="r"
    )
    inference = VllmInferencePool(
        chart, "Pool", VllmInferencePoolProps(pool=chart.pool, gateway_namespaces=("eg",))
    )
    GatewayEndpoint(
        chart, "Eg", GatewayEndpointProps(name="eg-gateway", namespace="real-b",
                                          gateway_class_name="eg")
    ).route_to(chart.pool, backend=inference, route_name="via-pool")  # fmt: skip
    objs = [
        o
        for o in cdk8s.Testing.synth(chart)
        if o["kind"] != "PersistentVolume"  # cluster-scoped, already applied above
    ]
    out = _apply(kubectl, objs, tmp_path)
    assert "httproute.gateway.networking.k8s.io/r" in out
    assert "inferencepool.inference.networking.k8s.io/vllm-pool" in out

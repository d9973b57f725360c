"""VllmDashboard: a Grafana dashboard for vLLM in a ConfigMap for Grafana's sidecar.

Optional: nothing is emitted unless a chart instantiates it. The dashboard JSON is built here
(no data file) and serialized with sorted keys, so two synths are byte-identical.

Metric names are those of vLLM v0.18 (v1 engine), served on ``/metrics``:

* ``vllm:prompt_tokens_total``, ``vllm:generation_tokens_total`` (counters);
* ``vllm:time_to_first_token_seconds`` (histogram);
* ``vllm:num_requests_waiting``, ``vllm:num_requests_running`` (gauges);
* ``vllm:kv_cache_usage_perc`` (gauge, 0-1). It replaced ``vllm:gpu_cache_usage_perc``
  (deprecated in vllm-project/vllm#18354, no longer emitted by default since), which the
  panel still reads as a fallback for older images.

GPU memory comes from NVIDIA's DCGM exporter (``DCGM_FI_DEV_FB_USED``, MiB), which is not
part of this library: unless the cluster already runs it (``kubectl get pods -A | grep
dcgm``), install it on the GPU nodes (NVIDIA's ``dcgm-exporter`` Helm chart, or the GPU
Operator) and have Prometheus scrape it, or that panel stays empty.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from constructs import Construct

from vllm_doks import contracts
from vllm_doks.k8s import kube
from vllm_doks.k8s.names import dns_label
from vllm_doks.k8s.pool_addon import PoolAddOn
from vllm_doks.k8s.vllm_worker_pool import VllmWorkerPool
from vllm_doks.props import takes_props
from vllm_doks.validation import Problems, check_dns_label, check_dns_subdomain

#: Metrics the dashboard charts (the KV-cache panel also reads :data:`LEGACY_KV_CACHE_METRIC`).
GENERATION_TOKENS_METRIC = contracts.VLLM_METRIC_GENERATION_TOKENS
PROMPT_TOKENS_METRIC = contracts.VLLM_METRIC_PROMPT_TOKENS
TTFT_BUCKET_METRIC = contracts.VLLM_METRIC_TTFT_BUCKET
WAITING_METRIC = contracts.VLLM_METRIC_REQUESTS_WAITING
RUNNING_METRIC = contracts.VLLM_METRIC_REQUESTS_RUNNING
KV_CACHE_METRIC = contracts.VLLM_METRIC_KV_CACHE_USAGE
LEGACY_KV_CACHE_METRIC = contracts.VLLM_METRIC_LEGACY_KV_CACHE_USAGE
GPU_MEMORY_METRIC = contracts.DCGM_METRIC_FB_USED

#: Label the Grafana dashboard sidecar (kube-prometheus-stack, the Grafana Helm chart) looks
#: for by default, and its value.
DEFAULT_SIDECAR_LABEL = contracts.GRAFANA_SIDECAR_LABEL
DEFAULT_SIDECAR_LABEL_VALUE = contracts.GRAFANA_SIDECAR_LABEL_VALUE
#: Annotation the sidecar reads a folder name from, when its ``folderAnnotation`` is set so.
FOLDER_ANNOTATION = contracts.GRAFANA_FOLDER_ANNOTATION

_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+\.json$")
_SELECTOR = '{namespace="$namespace", model_name=~"$model_name"}'
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _check_label_key(problems: Problems, field_name: str, value: object) -> bool:
    ok = isinstance(value, str) and 0 < len(value) <= 317
    if ok:
        assert isinstance(value, str)
        prefix, _, name = value.rpartition("/")
        ok = len(name) <= 63 and bool(_LABEL_NAME.match(name))
        if ok and prefix:
            ok = check_dns_subdomain(Problems(), field_name, prefix)
    return problems.check(
        ok,
        field_name,
        value,
        "must be a Kubernetes label key: an optional DNS subdomain prefix and '/', then at "
        "most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
    )


@dataclass(frozen=True, kw_only=True)
class VllmDashboardProps:
    """Props of :class:`VllmDashboard`."""

    pool: VllmWorkerPool
    """The worker pool the dashboard opens on (its namespace and served model name are the
    defaults of the dashboard's variables; any vLLM in the cluster can be picked). Required."""
    namespace: str | None = None
    """Namespace of the ConfigMap. The sidecar of kube-prometheus-stack watches only Grafana's
    own namespace unless ``grafana.sidecar.dashboards.searchNamespace=ALL``: then put it
    there, e.g. ``"monitoring"`` (the namespace must exist). Default: the pool's namespace."""
    name: str | None = None
    """Name of the ConfigMap. Default ``<deployment>-dashboard``."""
    label_key: str = DEFAULT_SIDECAR_LABEL
    """Label the Grafana sidecar selects dashboard ConfigMaps by. Default
    ``"grafana_dashboard"`` (kube-prometheus-stack's and the Grafana chart's default)."""
    label_value: str = DEFAULT_SIDECAR_LABEL_VALUE
    """Value of that label. Default ``"1"``."""
    folder: str | None = None
    """Grafana folder, as a ``grafana_folder`` annotation (read by sidecars configured with
    ``folderAnnotation: grafana_folder``). Default ``None``."""
    title: str = "vLLM"
    """Dashboard title. Default ``"vLLM"``."""
    uid: str | None = None
    """Dashboard uid (at most 40 characters), stable across re-imports. Default:
    ``vllm-doks-<namespace>-<deployment>``, shortened to 40 characters if need be."""
    file_name: str = "vllm.json"
    """Key of the dashboard in the ConfigMap (the file name the sidecar writes). Default
    ``"vllm.json"``."""

    def problems(self) -> Problems:
        problems = Problems()
        problems.check(
            isinstance(self.pool, VllmWorkerPool), "pool", self.pool, "must be a VllmWorkerPool"
        )
        if self.namespace is not None:
            check_dns_label(problems, "namespace", self.namespace)
        if self.name is not None:
            check_dns_subdomain(problems, "name", self.name)
        _check_label_key(problems, "label_key", self.label_key)
        problems.check(
            isinstance(self.label_value, str)
            and len(self.label_value) <= 63
            and bool(_LABEL_VALUE.match(self.label_value)),
            "label_value",
            self.label_value,
            "must be a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit",
        )
        if self.folder is not None:
            problems.check(
                isinstance(self.folder, str) and bool(self.folder.strip()),
                "folder",
                self.folder,
                "must be a non-empty folder name, or None",
            )
        problems.check(
            isinstance(self.title, str) and bool(self.title.strip()),
            "title",
            self.title,
            "must be a non-empty title",
        )
        if self.uid is not None:
            problems.check(
                isinstance(self.uid, str)
                and 0 < len(self.uid) <= 40
                and bool(re.match(r"^[A-Za-z0-9_-]+$", self.uid)),
                "uid",
                self.uid,
                "must be 1 to 40 letters, digits, '-' or '_' (Grafana's limit)",
            )
        problems.check(
            isinstance(self.file_name, str)
            and len(self.file_name) <= 253
            and bool(_CONFIGMAP_KEY.match(self.file_name)),
            "file_name",
            self.file_name,
            "must be a ConfigMap key ending in '.json' (letters, digits, '-', '_', '.')",
        )
        return problems


def _panel(
    title: str,
    description: str,
    unit: str,
    series: dict[str, str],
    *,
    max_value: float | None = None,
) -> dict[str, Any]:
    """A time-series panel charting ``series`` (legend -> PromQL expression), in order (the
    panel's id and place are given by :func:`_lay_out`)."""
    defaults: dict[str, Any] = {"unit": unit, "min": 0}
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": _DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            # refIds A, B, ...: what Grafana itself assigns to a panel's queries.
            {
                "datasource": _DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "refId": chr(ord("A") + n),
            }
            for n, (legend, expr) in enumerate(series.items())
        ],
    }


def _lay_out(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Number the panels from 1 and place them in two columns of 12 x 8, row by row; a last
    panel alone in its row takes the full width."""
    for i, panel in enumerate(panels):
        alone = i == len(panels) - 1 and i % 2 == 0
        panel["id"] = i + 1
        panel["gridPos"] = {"x": 12 * (i % 2), "y": 8 * (i // 2), "w": 24 if alone else 12, "h": 8}
    return panels


def _query_variable(name: str, label: str, query: str, default: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": _DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "sort": 1,
        "current": {"selected": True, "text": default, "value": default},
        "includeAll": False,
        "multi": False,
        "options": [],
        "hide": 0,
    }


def dashboard_json(*, title: str, uid: str, namespace: str, model_name: str) -> dict[str, Any]:
    """The Grafana dashboard model, with ``namespace`` and ``model_name`` as the defaults of
    its variables and the Prometheus data source as a ``datasource`` variable."""
    sel = _SELECTOR
    rate = "[$__rate_interval]"
    ttft = f"sum by (le) (rate({TTFT_BUCKET_METRIC}{sel}{rate}))"
    panels = [
        _panel(
            "Token throughput",
            "Prompt (prefill) and generated tokens per second, all replicas.",
            "short",
            {
                "generated": f"sum(rate({GENERATION_TOKENS_METRIC}{sel}{rate}))",
                "prompt": f"sum(rate({PROMPT_TOKENS_METRIC}{sel}{rate}))",
            },
        ),
        _panel(
            "Time to first token",
            "p50 and p95 of the time from a request's arrival to its first token.",
            "s",
            {"p50": f"histogram_quantile(0.5, {ttft})", "p95": f"histogram_quantile(0.95, {ttft})"},
        ),
        _panel(
            "Queue depth",
            "Requests waiting for a place in the batch, and running in it, per pod. Waiting "
            "requests mean the replica is saturated (the autoscaler's signal).",
            "short",
            {
                "waiting {{pod}}": f"sum by (pod) ({WAITING_METRIC}{sel})",
                "running {{pod}}": f"sum by (pod) ({RUNNING_METRIC}{sel})",
            },
        ),
        _panel(
            "KV-cache usage",
            f"Fraction of the KV cache in use, per pod ({KV_CACHE_METRIC}; "
            f"{LEGACY_KV_CACHE_METRIC} before vLLM renamed it). Near 100% requests get "
            "preempted or wait.",
            "percentunit",
            {
                "{{pod}}": f"max by (pod) ({KV_CACHE_METRIC}{sel}) or "
                f"max by (pod) ({LEGACY_KV_CACHE_METRIC}{sel})"
            },
            max_value=1,
        ),
        _panel(
            "GPU memory used",
            f"Frame-buffer memory in use per GPU ({GPU_MEMORY_METRIC}, from NVIDIA's DCGM "
            "exporter, which must be installed and scraped). vLLM reserves most of it up "
            "front for the KV cache, so this stays near --gpu-memory-utilization.",
            "decmbytes",
            {"{{Hostname}} GPU {{gpu}}": f"sum by (Hostname, gpu) ({GPU_MEMORY_METRIC})"},
        ),
    ]
    return {
        "uid": uid,
        "title": title,
        "tags": ["vllm", "vllm-doks"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                },
                _query_variable(
                    "namespace",
                    "Namespace",
                    f"label_values({RUNNING_METRIC}, namespace)",
                    namespace,
                ),
                _query_variable(
                    "model_name",
                    "Model",
                    f'label_values({RUNNING_METRIC}{{namespace="$namespace"}}, model_name)',
                    model_name,
                ),
            ]
        },
        "panels": _lay_out(panels),
    }


@takes_props(VllmDashboardProps)
class VllmDashboard(PoolAddOn[VllmDashboardProps]):
    """A ConfigMap holding a Grafana dashboard for vLLM, labelled for Grafana's sidecar.

    Panels: token throughput (prompt and generated tokens/s), time to first token (p50,
    p95), queue depth (waiting and running requests), KV-cache usage and GPU memory (from
    NVIDIA's DCGM exporter). The Prometheus data source is a dashboard variable, so the
    dashboard works whatever the data source's uid; so are the namespace and the served
    model, defaulting to the pool's.
    """

    def __init__(self, scope: Construct, id: str, props: VllmDashboardProps) -> None:
        super().__init__(scope, id, props)
        pool = self.pool
        # Where Grafana's sidecar looks, which may be another namespace than the pool's.
        self.namespace = props.namespace or pool.namespace
        self.name = props.name or f"{pool.deployment_name}-dashboard"
        self.uid = props.uid or dns_label(f"vllm-doks-{pool.namespace}-{pool.deployment_name}", 40)
        self.dashboard = dashboard_json(
            title=props.title,
            uid=self.uid,
            namespace=pool.namespace,
            model_name=pool.served_model_name,
        )
        self.dashboard_text = json.dumps(self.dashboard, sort_keys=True, indent=2) + "\n"

        annotations = {FOLDER_ANNOTATION: props.folder} if props.folder is not None else None
        self.config_map = kube.KubeConfigMap(
            self,
            "ConfigMap",
            metadata=kube.ObjectMeta(
                name=self.name,
                namespace=self.namespace,
                labels={props.label_key: props.label_value},
                annotations=annotations,
            ),
            data={props.file_name: self.dashboard_text},
        )

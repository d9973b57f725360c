"""End-to-end: drive app.py as a user would, and the synth orchestration. A subprocess where
only a fresh process proves it (the default synth's two processes, the process environment, the
modules a Kubernetes-only synth loads), else ``main`` in this process (support.run_main)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, load_yaml_dir, validate_objects
from support import SEED_STACK2_OUTPUTS, python_hooks, run_app, run_main, start_app

from vllm_doks.cli import build_parser, main
from vllm_doks.config import config_fields

TOKEN = "hf_LEAKCANARY0123456789abcdef"


def tree_digest(*dirs: Path) -> dict[str, str]:
    return {
        str(p.relative_to(d.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
        for d in dirs
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def objects(dist: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in load_yaml_dir(dist)}


#: A user's shell holds secrets the app must never write out (they do not change its output).
SECRETS = {
    "HF_TOKEN": TOKEN,
    "TF_VAR_hf_token": TOKEN,
    "VLLM_API_KEY": TOKEN,
    "DIGITALOCEAN_ACCESS_TOKEN": TOKEN,
    "AWS_SECRET_ACCESS_KEY": TOKEN,
}


@pytest.fixture(scope="module")
def default_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``app.py synth`` in a fresh process, as a user runs it, with secrets in its environment."""
    cwd = tmp_path_factory.mktemp("default")
    return cwd, run_app(cwd, "synth", env=SECRETS)


def test_default_synth_writes_both_layers(
    default_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, proc = default_run
    assert proc.returncode == 0, proc.stderr
    assert (cwd / "cdktf.out" / "stacks" / "vllm-infra" / "cdk.tf.json").is_file()
    objs = objects(cwd / "dist")
    assert ("Deployment", "vllm") in objs and ("Gateway", "vllm-gateway") in objs
    assert validate_objects(objs.values()) == []
    assert "end-of-life" not in proc.stderr.lower()


def test_default_synth_reports_the_seeds_stack2_outputs(
    default_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, proc = default_run
    printed = json.loads(proc.stdout.split("Stack 2 outputs:\n", 1)[1])
    assert printed == SEED_STACK2_OUTPUTS
    assert json.loads((cwd / "dist" / "meta" / "outputs.json").read_text())["outputs"] == printed


def test_default_synth_says_which_values_are_examples(
    default_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, proc = default_run
    assert "EXAMPLES" in proc.stderr and "nfs_host=nfs-host-from-stack-1.invalid" in proc.stderr
    pv = objects(cwd / "dist")[("PersistentVolume", "vllm.vllm-models-pv")]
    assert "nfs_host" in pv["metadata"]["annotations"]["vllm-doks.io/example-values"]
    assert pv["spec"]["nfs"]["server"].endswith(".invalid")
    report = json.loads((cwd / "dist" / "meta" / "outputs.json").read_text())
    assert set(report["example_values"]) == {"nfs_host", "nfs_mount_path"}


@pytest.mark.parametrize("shape", ["cdktf", "terraform"])
def test_handoff_from_each_outputs_shape(tmp_path: Path, shape: str) -> None:
    values = {
        "nfs_host": "10.200.0.12",
        "nfs_mount_path": "/7788/share-abc",
        "nfs_size_gb": 500,
        "gpu_node_pool_name": "prod-gpu-h100",
        "cluster_name": "prod",
    }
    if shape == "cdktf":
        payload: dict[str, Any] = {"vllm-infra": values}
    else:
        payload = {k: {"value": v, "type": "string", "sensitive": False} for k, v in values.items()}
    (tmp_path / "outputs.json").write_text(json.dumps(payload))
    proc = run_main(tmp_path, "synth", "--layer", "k8s", "--infra-outputs", "outputs.json")
    assert proc.returncode == 0, proc.stderr
    assert "EXAMPLES" not in proc.stderr
    objs = objects(tmp_path / "dist")
    pv = objs[("PersistentVolume", "vllm.vllm-models-pv")]
    assert pv["spec"]["nfs"] == {"server": "10.200.0.12", "path": "/7788/share-abc"}
    assert (
        "annotations" not in pv["metadata"]
        or "vllm-doks.io/example-values" not in pv["metadata"]["annotations"]
    )
    assert pv["spec"]["capacity"]["storage"] == "500Gi"
    pod = objs[("Deployment", "vllm")]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"doks.digitalocean.com/node-pool": "prod-gpu-h100"}
    assert not (tmp_path / "cdktf.out").exists()


def test_handoff_through_environment_as_the_cdk8s_cli_does(tmp_path: Path) -> None:
    (tmp_path / "o.json").write_text(
        json.dumps(
            {
                "s": {
                    "nfs_host": "10.0.0.3",
                    "nfs_mount_path": "/x",
                    "nfs_size_gb": 60,
                    "gpu_node_pool_name": "g",
                }
            }
        )
    )
    proc = run_main(
        tmp_path,
        env={"CDK8S_OUTDIR": str(tmp_path / "k8s-out"), "VLLM_DOKS_INFRA_OUTPUTS": "o.json"},
    )
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "cdktf.out").exists()  # the cdk8s CLI asks for its layer only
    pv = objects(tmp_path / "k8s-out")[("PersistentVolume", "vllm.vllm-models-pv")]
    assert pv["spec"]["nfs"]["server"] == "10.0.0.3"


def test_config_file_env_and_flag_precedence(tmp_path: Path) -> None:
    (tmp_path / "vllm.yaml").write_text(
        "replicas: 2\ngpu_node_count: 4\nquantization: fp8\nmodel_id: Qwen/Qwen2.5-7B-Instruct\n"
    )
    proc = run_main(
        tmp_path,
        "synth",
        "--layer",
        "k8s",
        "--config",
        "vllm.yaml",
        "--replicas",
        "4",
        env={"VLLM_DOKS_REPLICAS": "3", "VLLM_DOKS_MODEL_ID": "Qwen/Qwen2.5-32B-Instruct"},
    )
    assert proc.returncode == 0, proc.stderr
    deploy = objects(tmp_path / "dist")[("Deployment", "vllm")]
    assert deploy["spec"]["replicas"] == 4  # flag > env > file
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "/models/Qwen2.5-32B-Instruct" in args  # env > file
    assert args[args.index("--quantization") + 1] == "fp8"  # file > default


def test_failed_synth_leaves_previous_output_untouched(tmp_path: Path) -> None:
    assert run_main(tmp_path, "synth").returncode == 0
    before = tree_digest(tmp_path / "cdktf.out", tmp_path / "dist")
    proc = run_main(tmp_path, "synth", "--replicas", "0", "--nfs-size-gb", "10")
    assert proc.returncode == 1
    assert "replicas: got 0" in proc.stderr and "nfs_size_gb: got 10" in proc.stderr
    assert "nothing was written" in proc.stderr
    assert tree_digest(tmp_path / "cdktf.out", tmp_path / "dist") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out", "dist"]  # no staging left


def test_a_failure_during_synth_keeps_old_output_and_cleans_staging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vllm_doks.cli as cli

    outdirs = {"cloud": tmp_path / "cdktf.out", "k8s": tmp_path / "dist"}
    assert (
        main(
            ["synth", "--cloud-outdir", str(outdirs["cloud"]), "--k8s-outdir", str(outdirs["k8s"])],
            env={},
        )
        == 0
    )
    before = tree_digest(*outdirs.values())

    def boom(*_: object) -> None:
        raise RuntimeError("disk full")

    # The cloud layer fails while the Kubernetes layer (in its own process, as from a cold
    # start) has already written its staging directory.
    monkeypatch.setattr(cli, "synth_cloud", boom)
    monkeypatch.setattr(cli, "_second_process_pays", lambda: True)
    with pytest.raises(RuntimeError):
        main(
            ["synth", "--cloud-outdir", str(outdirs["cloud"]), "--k8s-outdir", str(outdirs["k8s"])],
            env={},
        )
    # The Kubernetes layer's staging must not replace the old output either, so both layers
    # stay consistent with each other, and no staging directory is left behind.
    assert tree_digest(*outdirs.values()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out", "dist"]


def test_an_interrupt_while_the_other_process_starts_leaves_no_staging_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C between starting the Kubernetes layer's process and holding its future: that
    process went on writing into its staging directory after this one had removed it."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import vllm_doks.cli as cli

    args = ["synth", "--cloud-outdir", str(tmp_path / "cdktf.out")]
    args += ["--k8s-outdir", str(tmp_path / "dist")]
    assert main(args, env={}) == 0
    before = tree_digest(tmp_path / "cdktf.out", tmp_path / "dist")
    submit = ProcessPoolExecutor.submit

    def submit_then_interrupt(self: ProcessPoolExecutor, *a: Any, **k: Any) -> None:
        submit(self, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(ProcessPoolExecutor, "submit", submit_then_interrupt)
    monkeypatch.setattr(cli, "_second_process_pays", lambda: True)
    capsys.readouterr()
    assert main(args, env={}) == 130
    assert capsys.readouterr().err == (
        "interrupted: nothing was written; previous output is unchanged.\n"
    )
    for process in multiprocessing.active_children():  # anything still writing
        process.join(timeout=120)
    assert tree_digest(tmp_path / "cdktf.out", tmp_path / "dist") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out", "dist"]


def test_an_interrupt_between_the_layers_replacements_says_which_was_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import vllm_doks.cli as cli

    outdirs = {"cloud": tmp_path / "cdktf.out", "k8s": tmp_path / "dist"}
    args = ["synth", "--cloud-outdir", str(outdirs["cloud"]), "--k8s-outdir", str(outdirs["k8s"])]
    assert main(args, env={}) == 0
    k8s_before = tree_digest(outdirs["k8s"])
    replace = cli._replace_dir

    def replace_cloud_only(staged: Path, final: Path) -> None:
        if final == outdirs["k8s"]:
            raise KeyboardInterrupt
        replace(staged, final)

    monkeypatch.setattr(cli, "_replace_dir", replace_cloud_only)
    capsys.readouterr()
    assert main([*args, "--replicas", "2"], env={}) == 130
    assert capsys.readouterr().err == (
        f"interrupted: {outdirs['cloud']}/ (cloud layer) replaced; any other layer's previous "
        "output is unchanged.\n"
    )
    assert tree_digest(outdirs["k8s"]) == k8s_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out", "dist"]


#: sitecustomize.py that holds app.py's process, or the default synth's second process (the
#: Kubernetes layer, spawned: its argv ends with --multiprocessing-fork), where $CTRL_C_HOLD
#: says, and then writes the file $CTRL_C_READY. Held inside jsii ("synthesizing": cdk8s'
#: synth), it lets its Node process (which the same Ctrl-C stops) be gone before it goes on,
#: as it mostly is in a terminal; "importing" holds app.py's import of the CLI, "starting" the
#: second process before it has imported anything.
HOLD = """
import os, sys, time
from pathlib import Path
where = os.environ["CTRL_C_HOLD"]
ready = Path(os.environ["CTRL_C_READY"])
def running_children():
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue
        if int(ppid) == os.getpid() and state != "Z":
            yield stat.parent.name
def hold(*args, **kwargs):
    ready.write_text("ready")
    try:
        # Short sleeps, as a busy thread: the SIGINT may reach another thread of the process,
        # which does not cut a sleep short; the next step of this one then raises.
        for _ in range(1200):
            time.sleep(0.1)
    except KeyboardInterrupt:
        while where.endswith("synthesizing") and list(running_children()):
            time.sleep(0.01)
        raise
class HoldImport:  # holds the CLI's import before its module runs
    def find_spec(self, name, path=None, target=None):
        if name == "vllm_doks.cli":
            sys.meta_path.remove(self)
            # Not held here: Python's global import lock is held around find_spec.
            import importlib.util
            return importlib.util.spec_from_loader(name, HoldLoader)
class HoldLoader:
    @staticmethod
    def create_module(spec):
        hold()
    @staticmethod
    def exec_module(module):
        raise AssertionError("held, never run")
second = sys.argv[-1:] == ["--multiprocessing-fork"]
parent_waits = Path(f"{ready}.parent")
if where.startswith("second ") and not second:
    # app.py waits for the second process once its cloud layer is done: say so (a Ctrl-C
    # while it imports the cloud layer is the other cases' business).
    from concurrent.futures import Future
    result = Future.result
    def waiting(self, timeout=None):
        parent_waits.write_text("waiting")
        return result(self, timeout)
    Future.result = waiting
if second == where.startswith("second "):
    if where == "second starting":
        while not parent_waits.exists():
            time.sleep(0.01)
        ready.write_text("ready")
        time.sleep(0.5)  # a Ctrl-C meanwhile must wait: SIGINT starts blocked here
    elif where == "importing":
        sys.meta_path.insert(0, HoldImport())
    else:
        import cdk8s
        cdk8s.App.synth = hold
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(
    ("layers", "hold"),
    [
        pytest.param(["--layer", "k8s"], "importing", id="k8s-layer-importing"),
        pytest.param(["--layer", "k8s"], "synthesizing", id="k8s-layer-synthesizing"),
        pytest.param([], "second starting", id="both-layers-second-starting"),
        pytest.param([], "second synthesizing", id="both-layers-second-synthesizing"),
    ],
)
def test_ctrl_c_in_a_terminal_ends_with_the_one_line_that_says_what_was_written(
    tmp_path: Path, layers: list[str], hold: str
) -> None:
    """A terminal's Ctrl-C goes to the whole process group: app.py, jsii's Node process, and
    the default synth's second process (the Kubernetes layer). Before: a traceback while
    Python imported; after the CLI's line, jsii's exit handler's BrokenPipeError ("Exception
    ignored in atexit callback") and its Node relay's ECONNRESET; the second process's own
    traceback (while it started or waited for its job) and its jsii noise."""
    import os
    import signal
    import time

    from vllm_doks.cli import NOTHING_WRITTEN

    work, ready = tmp_path / "work", tmp_path / "ready"
    work.mkdir()
    # Four cores for the second process's cases: the default synth starts it only from four.
    cores = 4 if hold.startswith("second ") else None
    hooks = python_hooks(tmp_path / "hooks", HOLD, cores=cores)
    proc = start_app(
        work,
        "synth",
        *layers,
        env={**hooks, "CTRL_C_READY": str(ready), "CTRL_C_HOLD": hold},
        start_new_session=True,  # its own process group, as a shell's foreground job
    )
    deadline = time.monotonic() + 120
    held = [ready, *([Path(f"{ready}.parent")] if hold.startswith("second ") else [])]
    while not all(map(Path.exists, held)) and proc.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if not all(map(Path.exists, held)):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"never held {hold}: {proc.communicate(timeout=10)}")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (130, f"interrupted: {NOTHING_WRITTEN}\n")
    assert list(work.iterdir()) == []


def test_an_interrupted_swap_puts_the_previous_output_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vllm_doks.cli as cli

    final, staged = tmp_path / "dist", tmp_path / ".dist.new-x"
    final.mkdir()
    (final / "vllm.yaml").write_text("previous")
    staged.mkdir()
    (staged / "vllm.yaml").write_text("new")
    rename = Path.rename

    def interrupted(self: Path, target: Any) -> Path:
        if self == staged:  # the old output is already moved aside
            raise KeyboardInterrupt
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cli._replace_dir(staged, final)
    assert (final / "vllm.yaml").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".dist.new-x", "dist"]


def test_an_output_folder_that_cannot_be_one_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    code = main(
        ["synth", "--cloud-outdir", str(a_file), "--k8s-outdir", str(a_file / "dist")], env={}
    )
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: --cloud-outdir {a_file}: is a file, not a folder\n"
        f"error: --k8s-outdir {a_file / 'dist'}: {a_file} is a file, not a folder\n"
        "nothing was written; previous output is unchanged.\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_write_error_while_synthesizing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import vllm_doks.cli as cli

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device", str(tmp_path / ".cdktf.out.new-x"))

    monkeypatch.setattr(cli, "synth_cloud", disk_full)
    args = ["synth", "--cloud-outdir", str(tmp_path / "cdktf.out")]
    assert main([*args, "--k8s-outdir", str(tmp_path / "dist")], env={}) == 2
    assert capsys.readouterr().err == (
        f"error: [Errno 28] No space left on device: '{tmp_path / '.cdktf.out.new-x'}'\n"
        "nothing was written; previous output is unchanged.\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_help_lists_every_input_with_its_default() -> None:
    text = build_parser().format_help()
    squeezed = "".join(text.split())  # argparse wraps lines, even inside values
    for f in config_fields():
        if f.metadata.get("file_only"):  # a list (models:): named in the epilog instead
            assert f"{f.name}:" in text, f.name
            continue
        default = str(f.default).lower() if isinstance(f.default, bool) else repr(f.default)
        assert f"--{f.name.replace('_', '-')} " in text, f.name
        assert "".join(f"(default: {default})".split()) in squeezed, f.name
    assert "(default:None)" not in squeezed


#: What a default Kubernetes synth has no use for: bindings it has no object of (jsii
#: assemblies; KEDA's and the Prometheus Operator's take 100-200 ms each to load), the modules
#: of options it does not use, and what only a second synth or a two-layer one needs.
UNUSED_BY_DEFAULT = (
    "cdktf",
    "cdktf_cdktf_provider_digitalocean",
    "vllm_doks._imports.sh.keda",
    "vllm_doks._imports.com.coreos.monitoring",
    "vllm_doks._imports.io.k8s.networking.inference",
    "vllm_doks.cloud.infra_props",
    "vllm_doks.k8s.autoscaling",
    "vllm_doks.k8s.pod_monitor",
    "vllm_doks.k8s.dashboard",
    "vllm_doks.k8s.prefix_router",
    "vllm_doks.k8s.inference_pool",
    "yaml",
    "multiprocessing",
)


def test_kubernetes_only_synth_loads_nothing_it_does_not_use(tmp_path: Path) -> None:
    outdir = str(tmp_path / "d")
    code = (
        "import sys, vllm_doks.cli as c;"
        f"rc = c.main(['synth', '--layer', 'k8s', '--k8s-outdir', {outdir!r}], env={{}});"
        f"print(rc, *[m for m in {UNUSED_BY_DEFAULT!r} if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.stdout.splitlines()[-1].split() == ["0"], proc.stdout + proc.stderr


def test_stack2_via_terraform_orders_job_before_deployment_and_waits(tmp_path: Path) -> None:
    out = tmp_path / "cdktf.out"
    rc = main(
        [
            "synth",
            "--layer",
            "cloud",
            "--cloud-outdir",
            str(out),
            "--kubernetes-via-terraform",
            "true",
        ],
        env={"TF_VAR_hf_token": TOKEN, "HF_TOKEN": TOKEN},
    )
    assert rc == 0
    doc = json.loads((out / "stacks" / "vllm-kubernetes" / "cdk.tf.json").read_text())
    manifests = doc["resource"]["kubernetes_manifest"]
    # The download Job is named after its pod template's hash (model-download-<hash>).
    (job_key,) = [k for k in manifests if k.startswith("job-model-download-")]
    job = manifests[job_key]
    assert job["wait"] == {"condition": [{"type": "Complete", "status": "True"}]}
    assert f"kubernetes_manifest.{job_key}" in manifests["deployment-vllm"]["depends_on"]
    pv = manifests["persistentvolume-vllm-vllm-models-pv"]["manifest"]
    assert pv["spec"]["nfs"]["server"] == "${data.terraform_remote_state.infra.outputs.nfs_host}"
    # The same construct builds both: the Terraform manifests equal dist/ YAML but for the
    # NFS values Terraform resolves from Stack 1.
    assert main(["synth", "--layer", "k8s", "--k8s-outdir", str(tmp_path / "dist")], env={}) == 0
    yaml_objs = objects(tmp_path / "dist")
    deploy_yaml = yaml_objs[("Deployment", "vllm")]
    assert (
        manifests["deployment-vllm"]["manifest"]["spec"]["template"]["spec"]["containers"][0][
            "args"
        ]
        == (deploy_yaml["spec"]["template"]["spec"]["containers"][0]["args"])
    )
    assert doc["variable"]["hf_token"]["sensitive"] is True
    assert TOKEN not in (out / "stacks" / "vllm-kubernetes" / "cdk.tf.json").read_text()


def output_files(*dirs: Path) -> list[Path]:
    return [p for d in dirs for p in d.rglob("*") if p.is_file()]


def test_no_secret_ever_reaches_an_output_file(
    default_run: tuple[Path, subprocess.CompletedProcess[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fresh process (both layers, each in its own process) had them in its environment.
    cwd, proc = default_run
    assert proc.returncode == 0, proc.stderr
    files = output_files(cwd / "cdktf.out", cwd / "dist")
    # Stack 2 via Terraform takes the token as a variable and the backend the bucket's keys:
    # in process, the secrets both in the process environment and in the app's.
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    proc = run_main(
        tmp_path, "synth", "--kubernetes-via-terraform", "true", "--state-bucket", "my-state",
        env=SECRETS,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    stacks = output_files(tmp_path / "cdktf.out")
    assert {p.parent.name for p in stacks} >= {"vllm-infra", "vllm-kubernetes"}
    files += stacks + output_files(tmp_path / "dist")
    assert len(files) >= 10
    for path in files:
        assert TOKEN.encode() not in path.read_bytes(), path
    # A token offered as an input is refused, and not echoed back.
    (tmp_path / "leaky.yaml").write_text(f"hf_token: {TOKEN}\n")
    proc = run_main(tmp_path, "synth", "--config", "leaky.yaml", env={"VLLM_DOKS_API_KEY": TOKEN})
    assert proc.returncode == 1
    assert (
        "hf_token: got '<redacted>'" in proc.stderr and "api_key: got '<redacted>'" in proc.stderr
    )
    assert TOKEN not in proc.stderr + proc.stdout


def test_examples_project_synthesizes_valid_objects(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "own_chart.py"), str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {tmp_path / 'my-inference.yaml'} (12 objects: ")
    assert proc.stderr == ""  # cdk8s imported first, and still no Node banner
    objs = objects(tmp_path)
    assert objs[("Deployment", "qwen")]["metadata"]["namespace"] == "team-a"
    assert objs[("HTTPRoute", "qwen-route")]["spec"]["parentRefs"][0]["name"] == "team-a-gateway"
    assert validate_objects(objs.values()) == []


def test_readme_tables_match_the_code() -> None:
    from vllm_doks.docs import GENERATED, render_block

    readme = (REPO / "README.md").read_text()
    for name in GENERATED:
        assert render_block(name) in readme, f"README block {name} is stale: run `make docs`"


def test_cdktf_json_and_cdk8s_yaml_run_this_app() -> None:
    cdktf_json = json.loads((REPO / "cdktf.json").read_text())
    assert cdktf_json["app"].endswith("app.py synth --layer cloud")
    cdk8s_yaml = yaml.safe_load((REPO / "cdk8s.yaml").read_text())
    assert cdk8s_yaml["app"].endswith("app.py synth --layer k8s")
    # The bindings come from the releases whose CRDs the tests validate the output against
    # (tests/fixtures/crds/<project>-<version>-...): each import names the same version.
    fixtures = {
        "gateway-api/": "gateway-api-v1.3.0-standard.yaml",
        "kedacore/keda/": "keda-v2.20.2-scaledobjects.yaml",
        "prometheus-operator/": "prometheus-operator-v0.93.0-podmonitors.yaml",
        "gateway-api-inference-extension/": (
            "gateway-api-inference-extension-v1.6.0-inferencepools.yaml"
        ),
    }
    imports = cdk8s_yaml["imports"]
    assert len(imports) == len(fixtures)
    for project, fixture in fixtures.items():
        (url,) = [u for u in imports if f"/{project}" in u]
        version = re.search(r"-(v[0-9.]+)-", fixture)
        assert version and f"/{version[1]}/" in url, (url, fixture)
        assert (REPO / "tests" / "fixtures" / "crds" / fixture).exists()


def test_the_seeds_ha_example_is_refused_with_its_fixes(tmp_path: Path) -> None:
    """72B with online fp8 on one H100 per replica does not start in vLLM 0.18 (embeddings
    and lm_head stay bf16: 70 GiB of weights; profiling takes the rest): refused, with fixes,
    and nothing written."""
    ha = ["--model-id", "Qwen/Qwen2.5-72B-Instruct", "--quantization", "fp8", "--replicas", "3",
          "--gpu-node-count", "3"]  # fmt: skip
    proc = run_main(tmp_path, "synth", "--layer", "k8s", *ha)
    assert proc.returncode == 1
    assert "No available memory for the cache blocks" in proc.stderr
    assert "gpu-h200x1-141gb" in proc.stderr and "kv_cache_dtype: fp8" in proc.stderr
    assert not (tmp_path / "dist").exists()


def test_the_ha_example_on_an_h100_with_fp8_kv_cache_plans_and_passes_the_flags(
    tmp_path: Path,
) -> None:
    proc = run_main(
        tmp_path, "synth", "--layer", "k8s", "--model-id", "Qwen/Qwen2.5-72B-Instruct",
        "--quantization", "fp8", "--replicas", "3", "--gpu-node-count", "3",
        "--gpu-memory-utilization", "0.95", "--kv-cache-dtype", "fp8", "--max-model-len",
        "12288",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "OK: the plan fits." in proc.stdout  # progress on stdout
    plan = json.loads((tmp_path / "dist" / "meta" / "capacity.json").read_text())
    (pool,) = plan["pools"]
    assert pool["quantization"] == "fp8" and pool["replicas"] == 3
    assert pool["kv"]["verdict"] == "start" and pool["kv"]["max_model_len"] == 12288
    assert pool["kv"]["kv_tokens"] >= 12288 and pool["kv"]["max_concurrency"] >= 1
    assert pool["host_ram_gb"] == 240 and pool["cost"]["per_hour_usd"]["min_replicas"] > 10
    deploy = objects(tmp_path / "dist")[("Deployment", "vllm")]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    for flag, value in (
        ("--max-model-len", "12288"),
        ("--kv-cache-dtype", "fp8"),
        ("--gpu-memory-utilization", "0.95"),
    ):
        assert args[args.index(flag) + 1] == value
    # The startup probe covers the time to read 72B of weights from NFS, and the rollout
    # deadline agrees; the seed's 0.5B default keeps the seed's probe.
    startup = container["startupProbe"]
    budget = startup["initialDelaySeconds"] + startup["periodSeconds"] * startup["failureThreshold"]
    assert budget >= pool["startup_window_seconds"] > 240
    assert deploy["spec"]["progressDeadlineSeconds"] >= budget


def test_default_startup_probe_is_the_seeds_stretched_to_the_cold_start_budget(
    default_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, _ = default_run
    startup = objects(cwd / "dist")[("Deployment", "vllm")]["spec"]["template"]["spec"][
        "containers"
    ][0]["startupProbe"]
    pool = json.loads((cwd / "dist" / "meta" / "capacity.json").read_text())["pools"][0]
    # The seed's delay and period; the number of checks follows the cold-start budget (a cold
    # compile, engine start and one period after reading the weights), never below the seed's.
    window = pool["cold_start"]["startup_window_seconds"]
    assert (startup["initialDelaySeconds"], startup["periodSeconds"]) == (120, 10)
    assert startup["failureThreshold"] == max(12, -(-(window - 120) // 10))
    assert startup["initialDelaySeconds"] + 10 * startup["failureThreshold"] >= window
    assert round(pool["parameters_b"], 2) == 0.49
    assert pool["kv"]["verdict"] == "start" and pool["kv"]["max_model_len"] == 32768
    # Memory settings are passed to vLLM only when set.
    args = objects(cwd / "dist")[("Deployment", "vllm")]["spec"]["template"]["spec"]["containers"][
        0
    ]["args"]
    assert not {"--max-model-len", "--kv-cache-dtype", "--gpu-memory-utilization"} & set(args)


def test_impossible_capacity_plans_are_refused_with_the_fix(tmp_path: Path) -> None:
    proc = run_main(
        tmp_path, "synth", "--model-id", "Qwen/Qwen2.5-72B-Instruct", "--nfs-size-gb", "100"
    )
    assert proc.returncode == 1
    assert "vLLM would refuse to start" in proc.stderr and "gpu-h100x8-640gb" in proc.stderr
    assert "raise nfs_size_gb to at least" in proc.stderr
    assert not (tmp_path / "dist").exists() and not (tmp_path / "cdktf.out").exists()


def test_gpu_size_flows_into_both_layers(tmp_path: Path) -> None:
    outdirs = [
        "--cloud-outdir",
        str(tmp_path / "cdktf.out"),
        "--k8s-outdir",
        str(tmp_path / "dist"),
    ]
    assert main(["synth", "--gpu-size", "gpu-mi300x1-192gb", *outdirs], env={}) == 0
    doc = json.loads((tmp_path / "cdktf.out" / "stacks" / "vllm-infra" / "cdk.tf.json").read_text())
    cluster = doc["resource"]["digitalocean_kubernetes_cluster"]["vllm"]
    assert cluster["amd_gpu_device_plugin"] == {"enabled": True}
    pool = doc["resource"]["digitalocean_kubernetes_node_pool"]["gpu"]
    assert (pool["size"], pool["name"]) == ("gpu-mi300x1-192gb", "my-vllm-gpu-mi300x1")
    pod = objects(tmp_path / "dist")[("Deployment", "vllm")]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"doks.digitalocean.com/node-pool": "my-vllm-gpu-mi300x1"}
    assert pod["containers"][0]["image"] == "vllm/vllm-openai-rocm:v0.18.0"
    assert pod["containers"][0]["resources"]["limits"]["amd.com/gpu"] == 1
    assert [t["key"] for t in pod["tolerations"]] == ["amd.com/gpu"]

"""``python -m vllm_doks.rehearsal`` (``make rehearse``): rehearse a deploy without a cloud.

For each configuration: the real ``cdktf deploy`` against a simulated DigitalOcean API on
127.0.0.1, a second plan that must change nothing, DigitalOcean's catalogue changed under it
(default configuration), the Kubernetes layer synthesized from the outputs file and applied to a
real control plane (when its binaries are found), then ``cdktf destroy``. Prints a short report.
Exit status 1 when a plan after apply or after a catalogue change is not empty, or a step fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from vllm_doks.rehearsal.control_plane import (
    ControlPlane,
    ControlPlaneError,
    assets_from_env,
    missing_assets,
)
from vllm_doks.rehearsal.fake_digitalocean import FakeDigitalOcean
from vllm_doks.rehearsal.runner import (
    CONFIGURATIONS,
    CycleReport,
    RehearsalError,
    find_shared_dir,
    find_toolchain,
    format_report,
    rehearse,
)


def _control_plane_assets(repo: Path) -> Path | None:
    found = assets_from_env()
    if found is not None:
        return found
    shared = find_shared_dir(repo, "envtest")
    if shared is None or not (shared / "unpack").exists():
        return None
    out = subprocess.run([str(shared / "unpack")], capture_output=True, text=True, check=False)
    folder = Path(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
    return folder if folder is not None and not missing_assets(folder) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vllm_doks.rehearsal", description=__doc__)
    parser.add_argument(
        "--configuration",
        action="append",
        choices=list(CONFIGURATIONS),
        help="documented configuration to rehearse (repeatable; default: all)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="rehearse your own config file (YAML, as for app.py) instead",
    )
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="project root (app.py)")
    parser.add_argument("--no-control-plane", action="store_true", help="skip the Kubernetes step")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    toolchain = find_toolchain(repo)
    if isinstance(toolchain, str):
        print(f"cannot rehearse: {toolchain}", file=sys.stderr)
        return 2
    configs: dict[str, dict[str, Any]]
    if args.config is not None:
        configs = {args.config.stem: yaml.safe_load(args.config.read_text()) or {}}
    else:
        names = args.configuration or list(CONFIGURATIONS)
        configs = {n: {**CONFIGURATIONS[n], "namespace": f"rehearse-{n}"} for n in names}
    assets = None if args.no_control_plane else _control_plane_assets(repo)
    reports: list[CycleReport] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="vllm-doks-rehearsal-") as tmp:
        work = Path(tmp)
        plane: ControlPlane | None = None
        if assets is not None:
            crds = find_shared_dir(repo, "crds") or repo / "tests" / "fixtures" / "crds"
            plane = ControlPlane(
                assets, work / "control-plane", crd_files=sorted(crds.glob("*.yaml"))
            )
            print("starting the control plane ...", file=sys.stderr)
            plane.start()
        try:
            with FakeDigitalOcean(ready_after=1.0, max_per_page=4) as fake:
                for name, config in configs.items():
                    print(f"rehearsing {name} ...", file=sys.stderr)
                    try:
                        report = rehearse(
                            toolchain,
                            work,
                            name,
                            config,
                            fake,
                            plane=plane,
                            drift=name == "default" or args.config is not None,
                        )
                    except (RehearsalError, ControlPlaneError) as e:
                        failed = True
                        report = CycleReport(name, notes=[f"FAILED: {e}"])
                    if plane is None:
                        report.notes.append("no control plane: Kubernetes step not rehearsed")
                    plans = [report.replan, *report.drift.values()]
                    failed |= any(p is None or not p.no_changes for p in plans)
                    reports.append(report)
        finally:
            if plane is not None:
                plane.stop()
    print(format_report(reports))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

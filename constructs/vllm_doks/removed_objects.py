"""What a new ``dist/`` no longer emits, and the ``kubectl delete`` commands that remove it.

``kubectl apply -f dist/`` creates and updates, it never deletes: an object the previous synth
emitted and this one does not (the download Job of the model you replaced, the ScaledObject
after ``autoscaling: false``, the HTTPS listener's certificate ...) stays in the cluster.
kubectl's own pruning is no answer yet: in kubectl 1.34, ``--prune`` carries an "Alpha
Disclaimer" (kubernetes/kubernetes#34274) and ``--applyset`` is hidden unless
``KUBECTL_APPLYSET=true`` and marked "[alpha]" (``kubectl apply --help``, v1.34.9). So the synth
compares the new output with the ``dist/`` it replaces, prints the ``kubectl delete`` of every
object that is gone, and keeps the list in ``dist/meta/removed.json`` (carried over by later
synths until an object is emitted again), to run after ``kubectl apply -f dist/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Where a synth keeps the objects that earlier outputs emitted and this one does not.
REMOVED_FILE = Path("meta") / "removed.json"

#: The files ``kubectl apply -f <dir>`` reads (top level only, without ``-R``).
_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One object of a manifest directory: enough to name it to kubectl."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @property
    def resource(self) -> str:
        """``<kind>.<group>`` as kubectl takes it (``job.batch``, ``persistentvolume``)."""
        group = self.api_version.rpartition("/")[0]
        return f"{self.kind.lower()}.{group}" if group else self.kind.lower()

    def delete_command(self) -> str:
        ns = f" -n {self.namespace}" if self.namespace else ""
        return f"kubectl delete {self.resource}/{self.name}{ns} --ignore-not-found"

    def to_json(self) -> dict[str, str]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }


def manifest_objects(directory: Path) -> set[ObjectRef]:
    """The objects ``kubectl apply -f directory`` would apply (empty if it does not exist)."""
    refs: set[ObjectRef] = set()
    if not directory.is_dir():
        return refs
    import yaml  # here: a first synth reads no manifests and does not load it

    # PyYAML's libyaml-based safe loader where the wheel has it: reading the previous and the
    # new dist/ with the pure-Python loader took more time than the rest of a Kubernetes synth.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in sorted(directory.iterdir()):
        if path.suffix not in _MANIFEST_SUFFIXES or not path.is_file():
            continue
        try:
            docs = list(yaml.load_all(path.read_text(), Loader=loader))
        except (OSError, yaml.YAMLError):
            continue  # not ours to judge: kubectl will say what is wrong with it
        for doc in docs:
            if not isinstance(doc, dict) or "kind" not in doc:
                continue
            meta = doc.get("metadata") or {}
            refs.add(
                ObjectRef(
                    api_version=str(doc.get("apiVersion", "")),
                    kind=str(doc["kind"]),
                    namespace=str(meta.get("namespace") or ""),
                    name=str(meta.get("name", "")),
                )
            )
    return refs


def _identity(ref: ObjectRef) -> tuple[str, str, str, str]:
    # The same object under another API version (v1beta1 -> v1) is not removed.
    return (ref.api_version.rpartition("/")[0], ref.kind, ref.namespace, ref.name)


def previously_removed(directory: Path) -> set[ObjectRef]:
    """The list an earlier synth left in ``<directory>/meta/removed.json``."""
    try:
        data = json.loads((directory / REMOVED_FILE).read_text())
        return {
            ObjectRef(
                api_version=d["apiVersion"],
                kind=d["kind"],
                namespace=d["namespace"],
                name=d["name"],
            )
            for d in data["objects"]
        }
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def removed_objects(old_dir: Path, new_dir: Path) -> list[ObjectRef]:
    """Objects ``old_dir`` emitted (or still listed as removed) that ``new_dir`` does not,
    in the order to delete them: namespaced objects first, Namespaces and cluster-scoped
    objects last."""
    candidates = manifest_objects(old_dir) | previously_removed(old_dir)
    if not candidates:  # a first synth: nothing to compare, so the new output is not read
        return []
    new = {_identity(r) for r in manifest_objects(new_dir)}
    gone = [r for r in candidates if _identity(r) not in new]
    return sorted(gone, key=lambda r: (r.namespace == "", r.kind == "Namespace", r))


def write_removed(new_dir: Path, removed: Iterable[ObjectRef]) -> Path:
    """Record ``removed`` (with the delete commands) in ``<new_dir>/meta/removed.json``."""
    refs = list(removed)
    path = new_dir / REMOVED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "note": "objects an earlier synth emitted and this one does not; "
                "run the commands after `kubectl apply -f` of this directory",
                "objects": [r.to_json() for r in refs],
                "commands": [r.delete_command() for r in refs],
            },
            indent=2,
        )
        + "\n"
    )
    return path


def removal_report(outdir: Path, removed: Iterable[ObjectRef], old_dir: Path) -> str:
    """The stderr note of a synth whose output dropped objects ("" if none): the objects the
    previous output itself emitted in full, those carried over from its list as a count."""
    refs = list(removed)
    if not refs:
        return ""
    emitted_before = {_identity(r) for r in manifest_objects(old_dir)}
    new = [r for r in refs if _identity(r) in emitted_before]
    carried = len(refs) - len(new)
    listed = f"{outdir}/{REMOVED_FILE}"
    if not new:
        return f"NOTE: {carried} object(s) dropped by earlier synths are listed in {listed}."
    lines = [
        f"NOTE: {len(new)} object(s) of the previous {outdir}/ are no longer emitted and "
        f"`kubectl apply -f {outdir}/` leaves them in place; after applying, delete them:"
    ]
    lines += [f"  {r.delete_command()}" for r in new]
    lines.append(
        f"(listed in {listed}"
        + (f", with {carried} more dropped by earlier synths)" if carried else ")")
    )
    return "\n".join(lines)

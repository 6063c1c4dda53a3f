"""One server-side apply story, told to an API server through the real ``kubernetes`` client.

The fake kube-apiserver (tests/kubeapi.py) and a real kube-apiserver (tests/e2e) must tell
it the same way: tests/test_kubeapi.py runs it against the fake, tests/e2e/test_ssa_e2e.py
against the cluster in KUBECONFIG, and both compare with :data:`EXPECTED` (recorded from
kube-apiserver v1.36.2).
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

APPLY = "application/apply-patch+yaml"
NAME = "ssa-story"


def _service(core: Any, namespace: str) -> dict[str, Any]:
    return json.loads(core.read_namespaced_service(NAME, namespace, _preload_content=False).data)


def _owners(service: dict[str, Any]) -> dict[str, list[str]]:
    """annotation -> its managers (sorted)."""
    out: dict[str, list[str]] = {}
    for entry in service["metadata"].get("managedFields") or ():
        annotations = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get("f:annotations") or {}
        for key in annotations:
            if key.startswith("f:"):
                out.setdefault(key[2:], []).append(entry["manager"])
    return {k: sorted(v) for k, v in sorted(out.items())}


def _view(service: dict[str, Any]) -> dict[str, Any]:
    return {"annotations": service["metadata"].get("annotations") or {}, "owners": _owners(service)}


def _apply(core: Any, namespace: str, annotations: dict[str, str] | None, **options: Any) -> Any:
    metadata: dict[str, Any] = {"name": NAME, "namespace": namespace}
    metadata.update(options.pop("metadata", {}))
    if annotations is not None:
        metadata["annotations"] = annotations
    body = {"apiVersion": "v1", "kind": "Service", "metadata": metadata}
    try:
        resp = core.patch_namespaced_service(NAME, namespace, body, field_manager="routewarden", _content_type=APPLY,
                                             _preload_content=False, **options)
    except ApiException as exc:
        status = json.loads(exc.body)
        causes = [(c.get("reason"), c.get("field"), c.get("message"))
                  for c in (status.get("details") or {}).get("causes") or ()]
        return {"status": exc.status, "causes": causes}
    return _view(json.loads(resp.data))


def transcript(api_client: Any, namespace: str) -> list[tuple[str, Any]]:
    """Every step and what the server answered, normalized (no times, uids or resourceVersions)."""
    core = k8s.CoreV1Api(api_client)
    core.create_namespaced_service(namespace, {
        "metadata": {"name": NAME}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
        field_manager="creator")
    core.patch_namespaced_service(NAME, namespace, {"metadata": {"annotations": {"x": "1"}}}, field_manager="other")
    steps: list[tuple[str, Any]] = [("another manager sets x", _view(_service(core, namespace)))]
    steps.append(("apply x=2: conflict", _apply(core, namespace, {"x": "2"})))
    steps.append(("apply with a stale resourceVersion", _apply(core, namespace, {"y": "1"},
                                                                metadata={"resourceVersion": "1"})))
    rv = _service(core, namespace)["metadata"]["resourceVersion"]
    steps.append(("apply y=1", _apply(core, namespace, {"y": "1"}, metadata={"resourceVersion": rv})))
    rv = _service(core, namespace)["metadata"]["resourceVersion"]
    _apply(core, namespace, {"y": "1"})
    steps.append(("an apply that changes nothing writes nothing",
                  _service(core, namespace)["metadata"]["resourceVersion"] == rv))
    steps.append(("apply x=1, the value the other manager set", _apply(core, namespace, {"x": "1", "y": "1"})))
    steps.append(("dry-run apply y=2", _apply(core, namespace, {"x": "1", "y": "2"}, dry_run="All")))
    steps.append(("stored after the dry run", _view(_service(core, namespace))))
    steps.append(("apply nothing: y removed, x shared stays", _apply(core, namespace, None)))
    steps.append(("forced apply x=3", _apply(core, namespace, {"x": "3"}, force=True)))
    core.patch_namespaced_service(NAME, namespace, {"metadata": {"annotations": {"x": "4"}}}, field_manager="other")
    steps.append(("an update takes the field over", _view(_service(core, namespace))))
    return steps


EXPECTED: list[tuple[str, Any]] = [
    ("another manager sets x", {"annotations": {"x": "1"}, "owners": {"x": ["other"]}}),
    ("apply x=2: conflict", {"status": 409, "causes": [
        ("FieldManagerConflict", ".metadata.annotations.x", 'conflict with "other" using v1')]}),
    ("apply with a stale resourceVersion", {"status": 409, "causes": []}),
    ("apply y=1", {"annotations": {"x": "1", "y": "1"}, "owners": {"x": ["other"], "y": ["routewarden"]}}),
    ("an apply that changes nothing writes nothing", True),
    ("apply x=1, the value the other manager set",
     {"annotations": {"x": "1", "y": "1"}, "owners": {"x": ["other", "routewarden"], "y": ["routewarden"]}}),
    ("dry-run apply y=2",
     {"annotations": {"x": "1", "y": "2"}, "owners": {"x": ["other", "routewarden"], "y": ["routewarden"]}}),
    ("stored after the dry run",
     {"annotations": {"x": "1", "y": "1"}, "owners": {"x": ["other", "routewarden"], "y": ["routewarden"]}}),
    ("apply nothing: y removed, x shared stays", {"annotations": {"x": "1"}, "owners": {"x": ["other"]}}),
    ("forced apply x=3", {"annotations": {"x": "3"}, "owners": {"x": ["routewarden"]}}),
    ("an update takes the field over", {"annotations": {"x": "4"}, "owners": {"x": ["other"]}}),
]

"""Shared builders for the mutation tests: reviews as kube-apiserver sends them, and the mutate loop."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import yaml
from conftest import start_https, trusting

from webhook.admission import AdmissionRequest, parse_review
from webhook.certs import CertificateFiles
from webhook.decision import Decision
from webhook.engine import decide
from webhook.mutation.implementations import implementation_of
from webhook.mutation.trust import DEFAULT_CONTROLLERS
from webhook.policy.loader import PolicyStore, load_documents
from webhook.policy.model import PolicySet
from webhook.runtime import Runtime
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
REVIEWS = REPO / ".." / "shared" / "admission-reviews"
GROUP = "gateway.networking.k8s.io"


CILIUM_OPERATOR = "system:serviceaccount:kube-system:cilium-operator"
GITOPS_USER = "system:serviceaccount:kube-system:controller"


def captured(name: str, *, writer: str | None = None) -> dict[str, Any]:
    """A captured AdmissionReview (``<name>.mutate.json``), parsed; with ``writer``, as if that user had sent it
    (the captures were written by the harness admin, a gateway controller writes its own Service)."""
    raw = json.loads((REVIEWS / f"{name}.mutate.json").read_text())
    if writer is not None:
        raw["request"]["userInfo"] = {**raw["request"]["userInfo"], "username": writer}
    return raw


def controller_of(obj: dict[str, Any]) -> str:
    """The default identity of the controller whose marks ``obj`` carries, or a GitOps user for anything else."""
    meta = obj.get("metadata") or {}
    implementation = implementation_of(meta.get("labels") or {}, meta.get("ownerReferences") or [])
    controller = DEFAULT_CONTROLLERS.get(implementation or "")
    return controller.usernames[0] if obj["kind"] == "Service" and controller and controller.known else GITOPS_USER


def review(obj: dict[str, Any], *, operation: str = "CREATE", old: dict[str, Any] | None = None,
           user: str | None = None) -> AdmissionRequest:
    """The mutating AdmissionReview kube-apiserver would send for ``obj``, parsed by the real parser.

    ``user`` is the writer; by default, for a generated Service, its controller's default identity."""
    return parse_review(review_document(obj, operation=operation, old=old, user=user))


def review_document(obj: dict[str, Any], *, operation: str = "CREATE", old: dict[str, Any] | None = None,
                    user: str | None = None) -> dict[str, Any]:
    """The AdmissionReview document kube-apiserver would send for ``obj`` (see :func:`review`)."""
    kind = obj["kind"]
    group, _, version = obj["apiVersion"].rpartition("/")
    plural = {"Service": "services", "Gateway": "gateways"}[kind]
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": plural}
    options = "CreateOptions" if operation == "CREATE" else "UpdateOptions"
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "7d0c7f0e-0000-4000-8000-000000000001",
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
            "operation": operation,
            "userInfo": {"username": user or controller_of(obj), "groups": ["system:authenticated"]},
            "object": obj, "oldObject": old, "dryRun": False,
            "options": {"kind": options, "apiVersion": "meta.k8s.io/v1"},
        },
    }


def policies(text: str) -> PolicySet:
    """Policies from YAML text, through the real loader (schema and all)."""
    return load_documents([("servicepolicy-test.yaml", text)])


def mutate(request: AdmissionRequest, policy_set: PolicySet, state: ClusterState) -> tuple[Decision, dict[str, Any]]:
    """The decision and the object as stored once its patch is applied."""
    decision = decide(request, policy_set, state, webhook="mutate")
    assert decision.allowed
    obj = request.object or {}
    return decision, jsonpatch.apply_patch(copy.deepcopy(obj), list(decision.patch)) if decision.patch else obj


def gateway(name: str, namespace: str, *, class_name: str, hostnames: list[str | None], **extra: Any) -> dict[str, Any]:
    """A Gateway as the cluster view holds it (CRD defaults applied), one listener per hostname."""
    listeners = []
    for i, hostname in enumerate(hostnames):
        listener: dict[str, Any] = {
            "name": f"https-{i}", "port": 443, "protocol": "HTTPS",
            "allowedRoutes": {"namespaces": {"from": "Same"}},
            "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": f"tls-{i}"}]},
        }
        if hostname is not None:
            listener["hostname"] = hostname
        listeners.append(listener)
    return {
        "apiVersion": f"{GROUP}/v1", "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace, "uid": "3f0b9a52-5d1e-4d43-9a57-0c3c2f6a1e11", **extra},
        "spec": {"gatewayClassName": class_name, "listeners": listeners},
    }


def state_of(*objects: dict[str, Any]) -> ClusterState:
    return ClusterState.from_objects([copy.deepcopy(o) for o in objects])


def load_yaml(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


def test_a_built_review_parses_like_the_captured_one() -> None:
    """The review builder yields the same request fields kube-apiserver sent for the generated Service."""
    raw = captured("service-create-generated-loadbalancer")
    built = review(raw["request"]["object"])
    real = parse_review(raw)
    assert (built.kind, built.operation, built.name, built.namespace, built.object) == (
        real.kind, real.operation, real.name, real.namespace, real.object
    )


# ----------------------------------------------------------------------------- the webhook over real HTTPS
@dataclass
class Webhook:
    """The production server on real HTTPS (tests/conftest.py), with policies and a cluster view the test sets."""

    runtime: Runtime
    session: aiohttp.ClientSession

    def load(self, policy_text: str, *objects: dict[str, Any]) -> None:
        self.runtime.policies = PolicyStore(initial=policies(policy_text))
        self.runtime.state = state_of(*objects)

    async def answer(self, path: str, document: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(f"{path}?timeout=5s", data=json.dumps(document).encode(),
                                     headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        assert body["response"]["uid"] == document["request"]["uid"]
        return body["response"]

    async def mutate(self, document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The /mutate response and the object as the API server stores it (the patch applied)."""
        response = await self.answer("/mutate", document)
        assert response["allowed"] is True
        obj = copy.deepcopy(document["request"]["object"])
        if "patch" in response:
            obj = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(response["patch"])))
        return response, obj

    def count(self, rule: str, mode: str) -> float:
        """``routewarden_violations_total`` for one rule and mode, as /metrics exports it."""
        value = self.runtime.telemetry.registry.get_sample_value("routewarden_violations_total",
                                                                 {"rule": rule, "mode": mode})
        return value or 0.0


@contextlib.asynccontextmanager
async def serving(certificates: CertificateFiles) -> AsyncIterator[Webhook]:
    """The real server on a free port, with an empty policy set and cluster view."""
    runtime = Runtime(policies=PolicyStore(), state=ClusterState(), require_sync=False)
    server, runner = await start_https(runtime, certificates)
    try:
        connector = aiohttp.TCPConnector(ssl=trusting(certificates))
        async with aiohttp.ClientSession(server.url, connector=connector) as session:
            yield Webhook(runtime, session)
    finally:
        await runner.cleanup()

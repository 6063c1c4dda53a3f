"""Nothing from an object reaches the logs, at any level; the documented mTLS setup is well formed."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from conftest import REPO, review_body

from webhook.logs import JsonFormatter, TextFormatter
from webhook.policy.loader import PolicyStore
from webhook.runtime import Runtime
from webhook.server import create_app

sys.path.insert(0, str(REPO / "fuzz"))
import oracle

SECRET = "zq7sekrit4f9d2c1token"  # hostname-safe, so it fits in any field
JSON = {"Content-Type": "application/json"}


def planted(name: str, *, where: str) -> bytes:
    """A captured review with the secret planted in the object (and oldObject) at ``where``."""
    doc = json.loads(review_body(name))
    if doc["request"]["kind"]["kind"] == "Service":  # written by the controller, so that it is patched
        doc["request"]["userInfo"]["username"] = "system:serviceaccount:kube-system:cilium-operator"
    for key in ("object", "oldObject"):
        obj = doc["request"].get(key)
        if not isinstance(obj, dict):
            continue
        meta = obj.setdefault("metadata", {})
        if where == "annotation":
            meta.setdefault("annotations", {})["token"] = SECRET
        elif where == "label":
            meta.setdefault("labels", {})["token"] = SECRET
        elif where == "hostname":
            obj.setdefault("spec", {})["hostnames"] = [f"{SECRET}.example.com"]
        elif where == "backend":
            obj.setdefault("spec", {})["rules"] = [{"backendRefs": [{"name": SECRET, "namespace": "other", "port": 80}]}]
        elif where == "wrong-type":
            obj["spec"] = {"parentRefs": SECRET, "hostnames": {SECRET: SECRET}}
        elif where == "secret-data":
            obj.update({"kind": "Secret", "data": {"password": SECRET}, "stringData": {"token": SECRET}})
    return json.dumps(doc).encode()


CASES = [
    ("httproute-create.validate", "validate", "annotation"),
    ("httproute-create.validate", "validate", "label"),
    ("httproute-create.validate", "validate", "hostname"),  # denied: the hostname is not allowed
    ("httproute-create.validate", "validate", "backend"),  # denied: RefNotPermitted
    ("httproute-create.validate", "validate", "wrong-type"),  # denied: malformed object
    ("httproute-update-add-hostname.validate", "validate", "hostname"),
    ("gateway-create.validate", "validate", "annotation"),
    ("service-create-generated-loadbalancer.mutate", "mutate", "annotation"),  # patched
    ("service-create-generated-loadbalancer.mutate", "mutate", "wrong-type"),
    ("gateway-create.mutate", "mutate", "label"),
    ("service-create-clusterip.mutate", "mutate", "secret-data"),
]


@pytest.fixture
def every_log_line() -> Iterator[io.StringIO]:
    """Root logging at DEBUG through both production formatters, into one buffer."""
    stream = io.StringIO()
    handlers = []
    for formatter in (JsonFormatter(), TextFormatter()):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.setLevel(logging.DEBUG)
        handlers.append(handler)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield stream
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(level)


async def test_no_object_content_reaches_the_logs_at_debug(aiohttp_client: Any, every_log_line: io.StringIO) -> None:
    """Reviews carrying a secret in annotations, labels, hostnames, refs, data, or wrong types: never logged."""
    runtime = Runtime(policies=PolicyStore(initial=oracle.shipped_policies()), state=oracle.dev_state(),
                      require_sync=False)
    client = await aiohttp_client(create_app(runtime, policy_interval=None))
    answers = []
    for name, webhook, where in CASES:
        resp = await client.post(f"/{webhook}?timeout=5s", data=planted(name, where=where), headers=JSON)
        answers.append((resp.status, (await resp.json())["response"]))
    # Envelope errors too: a bad envelope field next to the object, and a body that is not JSON.
    broken = json.loads(planted("httproute-create.validate", where="annotation"))
    broken["request"]["operation"] = "PATCH"
    await client.post("/validate", data=json.dumps(broken).encode(), headers=JSON)
    await client.post("/validate", data=f'{{"kind": "{SECRET}"'.encode(), headers=JSON)
    logged = every_log_line.getvalue()
    assert all(status == 200 for status, _ in answers)
    assert any(not r["allowed"] for _, r in answers) and any("patch" in r for _, r in answers)  # denials, patches
    assert any(SECRET in json.dumps(r) for _, r in answers)  # the user is told (a denial quotes it); the log is not
    assert "decision" in logged and logging.getLogger("routewarden.decision").isEnabledFor(logging.DEBUG)
    assert SECRET not in logged, [line for line in logged.splitlines() if SECRET in line][:3]


def yaml_blocks(markdown: str) -> list[Any]:
    return [doc for block in re.findall(r"```yaml\n(.*?)```", markdown, re.DOTALL) for doc in yaml.safe_load_all(block)]


def test_the_documented_apiserver_client_certificate_setup_is_well_formed() -> None:
    """docs/security.md gives an AdmissionConfiguration whose kubeconfig names the webhook Service."""
    docs = yaml_blocks((REPO / "docs" / "security.md").read_text())
    [admission] = [d for d in docs if d and d.get("kind") == "AdmissionConfiguration"]
    plugins = {p["name"]: p["configuration"] for p in admission["plugins"]}
    assert set(plugins) == {"ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"}
    [kubeconfig] = [d for d in docs if d and d.get("kind") == "Config"]
    [user] = kubeconfig["users"]
    assert user["name"] == "routewarden.routewarden.svc"  # kube-apiserver matches the Service host
    assert {"client-certificate", "client-key"} <= set(user["user"])
    for configuration in plugins.values():
        assert configuration["kind"] == "WebhookAdmissionConfiguration"
        assert configuration["kubeConfigFile"]

"""Table tests of admission answers, run twice: through the engine, and as a real
AdmissionReview over HTTPS to the server holding the same policies and cluster view.

A :class:`Case` is one request (operation, object, old object), the policy text, the
objects added to the module's cluster, and the expected answer: the rules that deny,
the rules that warn, and words the answer must contain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import admission_review, validate_over_https

from webhook.certs import CertificateFiles
from webhook.decision import Mode
from webhook.engine import decide
from webhook.offline import synthesize_request
from webhook.policy.loader import PolicyStore, load_documents
from webhook.runtime import Runtime
from webhook.state.store import ClusterState

NOW = "2026-06-01T00:00:00Z"  # the creationTimestamp the apiserver gives an object being created


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def meta(ns: str, name: str, created: str | None) -> dict[str, Any]:
    out = {"name": name, "namespace": ns}
    return {**out, "creationTimestamp": created} if created else out


@dataclass(frozen=True)
class Case:
    id: str
    doc: str
    operation: str
    obj: dict[str, Any] | None
    old: dict[str, Any] | None = None
    policy: str = ""
    extra: tuple[dict[str, Any], ...] = ()
    denied: frozenset[str] = frozenset()
    warned: frozenset[str] = frozenset()
    says: tuple[str, ...] = field(default_factory=tuple)
    never_says: tuple[str, ...] = field(default_factory=tuple)  # words the answer must not contain
    online: bool = False  # judged against a watch-fed view (every object dated) rather than manifests


def case(id: str, doc: str, obj: dict[str, Any] | None, *, operation: str = "CREATE", denied: tuple[str, ...] = (),
         warned: tuple[str, ...] = (), **kw: Any) -> Any:
    return pytest.param(Case(id, doc, operation, obj, denied=frozenset(denied), warned=frozenset(warned), **kw), id=id)


def setup(c: Case, policy_prefix: str, cluster: Iterable[dict[str, Any]]) -> tuple[Any, ClusterState]:
    policies = load_documents([("p.yaml", policy_prefix + c.policy)])
    assert not policies.warnings
    state = ClusterState.from_objects([*cluster, *c.extra])
    if c.online:
        state.offline, state.missing = False, "is not in the cluster view (yet)"
    return policies, state


def _rules(violations: Any, mode: Mode) -> set[str]:
    return {v.rule for v in violations if v.mode is mode}


def check_engine(c: Case, policies: Any, state: ClusterState) -> None:
    """The engine's denials, warnings and wording for the case."""
    decision = decide(synthesize_request(c.obj, operation=c.operation, old=c.old), policies, state)
    assert decision.code != 400, decision.message
    assert _rules(decision.violations, Mode.ENFORCE) == c.denied, decision.message
    assert _rules(decision.violations, Mode.WARN) == c.warned, decision.warnings
    assert decision.allowed is not c.denied
    text = decision.message + " ".join(decision.warnings)
    for words in c.says:
        assert words in text
    for words in c.never_says:
        assert words not in text


async def check_https(c: Case, policies: Any, state: ClusterState, certificates: CertificateFiles, *,
                      reasons: Mapping[str, str] | None = None) -> None:
    """The same answer over HTTPS: allowed, each denial's reason (the rule's last word unless
    ``reasons`` says otherwise), the warnings' rules, and the words."""
    runtime = Runtime(policies=PolicyStore(initial=policies), state=state, require_sync=False)
    answer = await validate_over_https(runtime, certificates, admission_review(c.obj, operation=c.operation, old=c.old))
    assert answer["allowed"] is not c.denied
    message = answer.get("status", {}).get("message", "")
    expected = {(reasons or {}).get(rule, rule.rpartition("/")[2]) for rule in c.denied}
    assert all(f"{reason}:" in message for reason in expected), message
    assert {w.partition(":")[0] for w in answer.get("warnings", [])} == c.warned
    for words in c.says:
        assert words in message + " ".join(answer.get("warnings", []))
    for words in c.never_says:
        assert words not in message + " ".join(answer.get("warnings", []))

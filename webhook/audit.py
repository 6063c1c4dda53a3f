"""Audit: what admission can no longer catch, found by re-evaluating what is already there.

Objects admitted before a policy changed, or while the webhook was down (its
``failurePolicy`` let them through), or by two replicas at the same moment (each saw a
view without the other's route), are in the cluster now. The audit evaluates every
watched route and Gateway as the CREATE the webhook would answer today
(:func:`webhook.offline.evaluate` against the current view) and reports the findings
three ways: the ``routewarden_audit_violations`` gauge, log lines, and
``wgpolicyk8s.io/v1alpha2`` PolicyReports (one per namespace) when that CRD is installed.

Hostname conflicts need care: evaluated as a CREATE, *both* routes of a conflict see the
other as a rival. The hostname belongs to the first claimant (oldest
``creationTimestamp``, then namespace/kind/name, as admission orders them), so the
audit keeps the conflict only on the later claimant, naming the earlier one.

Several replicas: every replica runs the audit and writes the same reports. A report is
a pure function of the cluster view and the policies, which all replicas share (same
watches, same ConfigMap), and it is written only when its content differs from what is
stored (no timestamps in it), by create-or-replace with the stored resourceVersion. So
the writes are idempotent: replicas that agree write nothing, and replicas that briefly
disagree (one has seen an event the other has not yet) converge on the next round. A
Lease would add RBAC, a failure mode (a leader lost mid-round) and code for no
difference in the result; this is a webhook, not a controller.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from . import gatewayapi as gw
from .decision import Mode, Violation
from .logs import fields
from .offline import evaluate
from .policy.model import PolicySet
from .rules import ownership
from .state.kinds import KINDS_BY_NAME
from .state.store import ClusterState

log = logging.getLogger("routewarden.audit")

AUDITED_KINDS = ("Gateway", *sorted(gw.ROUTE_KINDS))
REPORT_GROUP, REPORT_VERSION, REPORT_PLURAL = "wgpolicyk8s.io", "v1alpha2", "policyreports"
REPORT_NAME = "routewarden"
SOURCE = "routewarden"
MANAGED_BY = {"app.kubernetes.io/managed-by": "routewarden"}
PASS_RULE = "admission"  # the rule named on a pass: the object is admitted by every policy

Result = Literal["pass", "fail", "warn"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of the audit: one object and one rule (or a pass for the whole object)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    rule: str
    policy: str
    result: Result
    message: str
    mode: str = ""
    field: str = ""
    fix: str = ""


@dataclass(frozen=True, slots=True)
class AuditReport:
    objects: int
    findings: tuple[Finding, ...]

    @property
    def violations(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.result != "pass")

    def counts(self) -> dict[tuple[str, str, str], int]:
        """``{(rule, mode, namespace): count}`` for :meth:`Telemetry.audit_results`."""
        return dict(Counter((f.rule, f.mode, f.namespace) for f in self.violations))

    def by_namespace(self) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = defaultdict(list)
        for f in self.findings:
            out[f.namespace].append(f)
        return dict(out)


# ----------------------------------------------------------------------------- the audit
def _with_type(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """Objects from a list may lack apiVersion/kind; the engine routes on them."""
    if obj.get("apiVersion") and obj.get("kind"):
        return dict(obj)
    watched = KINDS_BY_NAME[kind]
    api_version = f"{watched.group}/{watched.versions[0]}" if watched.group else watched.versions[0]
    return {"apiVersion": api_version, "kind": kind, **obj}


def earlier_claimant(state: ClusterState, route: gw.Route, hostname: str) -> ownership.Claimant | None:
    """The first claimant of another namespace (a route, or a tenant's ListenerSet listener)
    to claim ``hostname`` before this route on a Gateway it reaches; None when this route
    is the first claimant. ``hostname`` is one the route claims (its effective hostname:
    see :mod:`webhook.rules.ownership`), as the admission rule finds and names it."""
    claims = [c for c in ownership.route_claims(state, route) if c.hostname == hostname]
    if not claims:
        claims = [c for c in ownership.route_claims(state, route) if gw.hostname_matches(hostname, c.hostname)]
    earlier = [rival for c in claims for rival in ownership.earlier_rivals(state, c)[0]]
    return ownership.first_claimant(earlier).claimant if earlier else None


# Findings whose subject names a claim: kept only on the later claimant.
CLAIM_RULES = frozenset({"hostnames/HostnameConflict"})


def _keep(violation: Violation, route: gw.Route | None, state: ClusterState) -> bool:
    """Drop a HostnameConflict from the route that claimed the hostname first."""
    if violation.rule not in CLAIM_RULES or route is None or not violation.subject:
        return True
    return earlier_claimant(state, route, violation.subject) is not None


def _result(mode: Mode) -> Result:
    # An audit-mode rule is still broken: audit mode only means admission lets it through.
    return "warn" if mode is Mode.WARN else "fail"


def audit_object(obj: Mapping[str, Any], kind: str, policies: PolicySet, state: ClusterState) -> list[Finding]:
    obj = _with_type(obj, kind)
    meta = obj.get("metadata") or {}
    base = {"api_version": str(obj.get("apiVersion")), "kind": kind, "namespace": str(meta.get("namespace") or ""),
            "name": str(meta.get("name") or ""), "uid": str(meta.get("uid") or "")}
    validation, _ = evaluate(obj, policies, state)
    if validation.code == 400:  # fields of the wrong type: nothing can be said rule by rule
        return [Finding(**base, rule="routewarden/Malformed", policy=SOURCE, result="fail",
                        message=validation.message, mode=Mode.ENFORCE.value)]
    route = state.route(kind, base["namespace"], base["name"]) if kind in gw.ROUTE_KINDS else None
    findings = [
        Finding(**base, rule=v.rule, policy=v.policy or SOURCE, result=_result(v.mode), message=v.message,
                mode=v.mode.value, field=v.field, fix=v.fix)
        for v in validation.violations if _keep(v, route, state)
    ]
    return findings or [Finding(**base, rule=PASS_RULE, policy=SOURCE, result="pass",
                                message="admitted by every policy")]


def audit(state: ClusterState, policies: PolicySet) -> AuditReport:
    """Every Gateway and route in ``state`` evaluated against ``policies``. Pure."""
    findings: list[Finding] = []
    objects = 0
    for kind in AUDITED_KINDS:
        for obj in sorted(state.objects(kind), key=_key):
            objects += 1
            findings.extend(audit_object(obj, kind, policies, state))
    return AuditReport(objects, tuple(findings))


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


# ----------------------------------------------------------------------------- PolicyReports
def policy_report(namespace: str, findings: Iterable[Finding]) -> dict[str, Any]:
    """The PolicyReport of one namespace. No timestamps: equal findings give equal reports."""
    findings = sorted(findings, key=lambda f: (f.kind, f.name, f.rule, f.field, f.policy))
    counts = Counter(f.result for f in findings)
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "source": SOURCE,
            "policy": f.policy,
            "rule": f.rule,
            "result": f.result,
            "message": f.message,
            "scored": True,
            "category": "Gateway API",
            "resources": [{"apiVersion": f.api_version, "kind": f.kind, "namespace": f.namespace,
                           "name": f.name, **({"uid": f.uid} if f.uid else {})}],
        }
        if f.result != "pass":
            result["severity"] = "high" if f.result == "fail" else "medium"
            result["properties"] = {k: v for k, v in (("mode", f.mode), ("field", f.field), ("fix", f.fix)) if v}
        results.append(result)
    return {
        "apiVersion": f"{REPORT_GROUP}/{REPORT_VERSION}",
        "kind": "PolicyReport",
        "metadata": {"name": REPORT_NAME, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "summary": {"pass": counts["pass"], "fail": counts["fail"], "warn": counts["warn"], "error": 0, "skip": 0},
        "results": results,
    }


@dataclass(frozen=True, slots=True)
class WriteResult:
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    deleted: int = 0


def reports_installed(api_client: Any) -> bool:
    """Whether the API serves ``policyreports.wgpolicyk8s.io/v1alpha2`` (discovery)."""
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    try:
        resources = CustomObjectsApi(api_client).get_api_resources(REPORT_GROUP, REPORT_VERSION)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return any(r.name == REPORT_PLURAL for r in (resources.resources or ()))


def _same(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    labels = (stored.get("metadata") or {}).get("labels") or {}
    return (stored.get("results") or []) == wanted["results"] and stored.get("summary") == wanted["summary"] \
        and all(labels.get(k) == v for k, v in MANAGED_BY.items())


def write_policy_reports(api_client: Any, report: AuditReport) -> WriteResult | None:
    """Create, replace or delete our PolicyReports to match ``report``; None without the CRD.

    Blocking (the kubernetes client is): run it in a thread.
    """
    from kubernetes.client import CustomObjectsApi

    if not reports_installed(api_client):
        return None
    api = CustomObjectsApi(api_client)
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    listed = api.list_cluster_custom_object(REPORT_GROUP, REPORT_VERSION, REPORT_PLURAL, label_selector=selector)
    stored = {
        (item["metadata"]["namespace"], item["metadata"]["name"]): item for item in listed.get("items") or ()
    }
    wanted = {ns: policy_report(ns, found) for ns, found in report.by_namespace().items() if ns}
    created = replaced = unchanged = deleted = 0
    for ns, body in sorted(wanted.items()):
        current = stored.pop((ns, REPORT_NAME), None)
        if current is None:
            api.create_namespaced_custom_object(REPORT_GROUP, REPORT_VERSION, ns, REPORT_PLURAL, body)
            created += 1
        elif _same(current, body):
            unchanged += 1
        else:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            api.replace_namespaced_custom_object(REPORT_GROUP, REPORT_VERSION, ns, REPORT_PLURAL, REPORT_NAME, body)
            replaced += 1
    for (ns, name) in sorted(stored):  # namespaces with nothing left to audit
        if name == REPORT_NAME:
            api.delete_namespaced_custom_object(REPORT_GROUP, REPORT_VERSION, ns, REPORT_PLURAL, name)
            deleted += 1
    return WriteResult(created, replaced, unchanged, deleted)


# ----------------------------------------------------------------------------- the loop
def log_report(report: AuditReport) -> None:
    for f in report.violations:
        log.info("audit finding", extra=fields(kind=f.kind, namespace=f.namespace, name=f.name, rule=f.rule,
                                               mode=f.mode, result=f.result, policy=f.policy, field=f.field,
                                               message=f.message))
    log.info("audit done", extra=fields(objects=report.objects, violations=len(report.violations)))


async def audit_once(state: ClusterState, policy_store: Any, telemetry: Any, *, api_client: Any = None) -> AuditReport:
    """One round: evaluate, export the gauge, log, and write PolicyReports (when possible)."""
    report = audit(state, policy_store.current)
    telemetry.audit_results(report.counts())
    log_report(report)
    if api_client is not None:
        try:
            written = await asyncio.to_thread(write_policy_reports, api_client, report)
        except Exception as exc:  # noqa: BLE001 - the next round retries; admission is unaffected
            log.warning("could not write PolicyReports", extra=fields(error=f"{type(exc).__name__}: {exc}"))
        else:
            if written is None:
                log.debug("PolicyReport CRD (wgpolicyk8s.io/v1alpha2) not installed: reports not written")
            else:
                log.info("PolicyReports written", extra=fields(created=written.created, replaced=written.replaced,
                                                                unchanged=written.unchanged, deleted=written.deleted))
    return report


async def run_audit(
    state: ClusterState, policy_store: Any, telemetry: Any, *, interval: float, api_client: Any = None
) -> None:
    """Audit every ``interval`` seconds until cancelled, once the view has synced and policies loaded."""
    while True:
        if state.synced and policy_store.loaded:
            try:
                await audit_once(state, policy_store, telemetry, api_client=api_client)
            except Exception:
                log.exception("audit round failed")
            await asyncio.sleep(interval)
        else:
            await asyncio.sleep(min(interval, 1.0))


def audit_hook(
    state: ClusterState, policy_store: Any, telemetry: Any, *, interval: float, api_client: Any = None
) -> Callable[[], Awaitable[None]] | None:
    """The server's background task for :func:`run_audit`, or None when ``interval`` is 0."""
    if interval <= 0:
        return None

    async def run() -> None:
        await run_audit(state, policy_store, telemetry, interval=interval, api_client=api_client)

    return run

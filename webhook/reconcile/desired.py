"""What the reconciler applies to a generated Service: the Service mutation's own plan, in full.

The values come from :func:`webhook.mutation.plan_service`, the pure function the
mutating webhook and ``routewarden check`` use, called without a request user (a
reconciler has no writer to judge): whatever decides whether a Service is a
controller's generated Service (the trust rules), and what it gets, decides here too.
Nothing here knows a policy field.

Server-side apply needs the *whole* set of fields routewarden means to own, not a diff:
a field routewarden owns and leaves out of an apply is removed. The plan's annotations
and labels are that whole set (annotations a ``conflicts: keep`` policy leaves to
someone else, and create-only ones, are not in it). The plan sets
``externalTrafficPolicy`` only where it differs, so it is asked for a Service without
one. ``loadBalancerClass`` is never applied: it is immutable once set.

* A Service the plan does not trust (not generated, not where its controller puts
  Services, its Gateway not in view) is left alone, including what routewarden owns on it.
* A trusted Service no policy matches any more keeps what routewarden applied (a cloud
  load balancer annotation disappearing with a deleted policy file could re-provision the
  load balancer), except what the plan takes back: the external-dns hostname routewarden
  computed and recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import gatewayapi as gw
from ..mutation import plan_service
from ..mutation.policy import ServicePolicy, force_conflicts
from ..mutation.service import RECONCILER_FIELD_MANAGER as FIELD_MANAGER
from ..policy.model import PolicySet
from ..state.store import ClusterState

ETP = "externalTrafficPolicy"

Action = Literal["set", "adopt", "remove"]


@dataclass(frozen=True, slots=True)
class Owned:
    """The Service fields a field manager owns through server-side apply (managedFields)."""

    annotations: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    external_traffic_policy: bool = False


@dataclass(frozen=True, slots=True)
class Fields:
    """Values routewarden computes for a Service, in the three places it may write."""

    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    external_traffic_policy: str | None = None


@dataclass(frozen=True, slots=True)
class Desired:
    """The plan's answer for one Service. ``fields`` is None when the reconciler leaves it alone."""

    fields: Fields | None
    gateway: tuple[str, str] | None = None
    implementation: str | None = None
    why: str = ""
    policies: tuple[str, ...] = ()
    force: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    """One field the apply sets, takes ownership of (value already right), or gives up."""

    path: str
    action: Action
    value: str | None = None  # the value applied (None for a removal)
    current: str | None = None  # the value stored now


@dataclass(frozen=True, slots=True)
class Plan:
    """The apply configuration for a Service and what it changes; empty ``changes``: nothing to do."""

    body: dict[str, Any]
    changes: tuple[Change, ...]

    @property
    def needed(self) -> bool:
        return bool(self.changes)


# ----------------------------------------------------------------------------- ownership
def owned_by(service: Mapping[str, Any], manager: str = FIELD_MANAGER) -> Owned:
    """What ``manager`` owns on ``service`` through Apply, read from ``metadata.managedFields``."""
    annotations: set[str] = set()
    labels: set[str] = set()
    etp = False
    for entry in (service.get("metadata") or {}).get("managedFields") or ():
        if not isinstance(entry, dict) or entry.get("manager") != manager or entry.get("operation") != "Apply":
            continue
        fields = entry.get("fieldsV1") or {}
        meta = fields.get("f:metadata") or {}
        annotations.update(_keys(meta.get("f:annotations")))
        labels.update(_keys(meta.get("f:labels")))
        etp = etp or "f:externalTrafficPolicy" in (fields.get("f:spec") or {})
    return Owned(frozenset(annotations), frozenset(labels), etp)


def _keys(fields: Any) -> list[str]:
    return [k[2:] for k in fields or () if isinstance(k, str) and k.startswith("f:")]


# ----------------------------------------------------------------------------- the plan
def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _map(obj: Mapping[str, Any], key: str) -> dict[str, str]:
    value = _meta(obj).get(key)
    return dict(value) if isinstance(value, dict) else {}


def _without_traffic_policy(service: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(service)
    if isinstance(service.get("spec"), dict):
        out["spec"] = {k: v for k, v in service["spec"].items() if k != ETP}
    return out


def _kept(service: Mapping[str, Any], owned: Owned, remove: frozenset[str]) -> Fields:
    """What routewarden owns, at its stored values, less what the plan takes back."""
    annotations = _map(service, "annotations")
    labels = _map(service, "labels")
    etp = _spec(service).get(ETP) if owned.external_traffic_policy else None
    return Fields({k: annotations[k] for k in owned.annotations - remove if k in annotations},
                  {k: labels[k] for k in owned.labels if k in labels}, etp if isinstance(etp, str) else None)


def desired_fields(service: Mapping[str, Any], *, policies: PolicySet, state: ClusterState,
                   owned: Owned | None = None) -> Desired:
    """What routewarden applies to ``service`` (see the module docstring). Pure."""
    owned = owned if owned is not None else owned_by(service)
    try:
        plan = plan_service(_without_traffic_policy(service), user=None, policies=policies, state=state,
                            operation="UPDATE", old=service)
    except gw.MalformedObject as exc:
        return Desired(None, why=f"cannot be read: {exc}")
    why = f"{plan.why}; {plan.trust}" if plan.trust else plan.why
    found = {"gateway": plan.gateway, "implementation": plan.implementation, "why": why, "warnings": plan.warnings}
    if not plan.trusted or plan.gateway is None or state.gateway(*plan.gateway) is None:
        return Desired(None, **found)  # not the controller's Service, or its Gateway is not known
    if not plan.policies:
        return Desired(_kept(service, owned, plan.remove), **found)
    chosen = sorted((p for p in policies.services if isinstance(p, ServicePolicy) and p.name in plan.policies),
                    key=lambda p: p.order)
    fields = Fields(dict(plan.annotations), dict(plan.labels), plan.external_traffic_policy)
    return Desired(fields, **found, policies=plan.policies, force=force_conflicts(chosen))


# ----------------------------------------------------------------------------- the apply
def _changes(where: str, want: Mapping[str, str], have: Mapping[str, str], owned: frozenset[str]) -> list[Change]:
    out = []
    for key, value in sorted(want.items()):
        current = have.get(key)
        if current != value:
            out.append(Change(f"{where}[{key}]", "set", value, current))
        elif key not in owned:
            out.append(Change(f"{where}[{key}]", "adopt", value, current))
    out += [Change(f"{where}[{key}]", "remove", None, have.get(key)) for key in sorted(owned - set(want))]
    return out


def plan(service: Mapping[str, Any], fields: Fields, owned: Owned) -> Plan:
    """The server-side apply configuration for ``fields``, guarded by the stored resourceVersion.

    A field routewarden owns and no longer computes is left out, so the apply removes it
    (unless another manager owns it too). A value already right but not yet owned is in
    the body, so the apply takes ownership of it: later it can be changed or removed.
    """
    meta = _meta(service)
    etp_want = {ETP: fields.external_traffic_policy} if fields.external_traffic_policy else {}
    etp_have = {ETP: _spec(service)[ETP]} if ETP in _spec(service) else {}
    changes = (_changes("metadata.annotations", fields.annotations, _map(service, "annotations"), owned.annotations)
               + _changes("metadata.labels", fields.labels, _map(service, "labels"), owned.labels)
               + _changes("spec", etp_want, etp_have, frozenset({ETP}) if owned.external_traffic_policy else frozenset()))
    metadata: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    if meta.get("resourceVersion"):
        metadata["resourceVersion"] = meta["resourceVersion"]
    if fields.annotations:
        metadata["annotations"] = dict(fields.annotations)
    if fields.labels:
        metadata["labels"] = dict(fields.labels)
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": metadata}
    if etp_want:
        body["spec"] = etp_want
    return Plan(body, tuple(changes))


def value_at(service: Mapping[str, Any], path: str) -> str | None:
    """The stored value at a :class:`Change` path (``metadata.annotations[key]``, ``spec[field]``)."""
    where, _, key = path.rstrip("]").partition("[")
    if where == "spec":
        value = _spec(service).get(key)
    else:
        value = _map(service, where.rpartition(".")[2]).get(key)
    return value if isinstance(value, str) else None

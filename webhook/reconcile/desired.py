"""What the reconciler applies to a generated Service: the mutation's own answer, in full.

The values come from the mutating webhook's code, called through the engine
(:func:`webhook.engine.mutate`) on the stored Service as an UPDATE with no request user,
so every rule that decides whether a Service is a controller's generated Service, and
what it gets, applies here unchanged. Nothing here knows a policy field.

Server-side apply needs the *whole* set of fields routewarden means to own, not a diff:
a field routewarden owns and leaves out of an apply is removed. The mutation only
reports what it changes, so it runs twice:

* on a **probe**, the Service without its annotations and without the labels and
  ``externalTrafficPolicy`` routewarden's field manager owns: every annotation the
  mutation computes, and every owned value it still computes, comes back as a change;
* on the Service as stored: a value the mutation chooses to keep there (a policy's
  ``conflicts: keep`` over someone else's value) differs from the probe's, and is
  left out, so it stays with whoever set it.

A field is desired when the mutation sets it on the probe and arrives at the same value
on the stored Service. ``loadBalancerClass`` is never applied: it is immutable once set.

When the mutation changes nothing on the probe, the Service is not one it shapes (not
generated, not trusted, its Gateway not in view, or no policy matches): it is left
alone, including what routewarden owns on it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonpatch
import orjson

from .. import engine
from .. import gatewayapi as gw
from ..admission import AdmissionRequest, GroupVersionKind
from ..mutation import describe_service
from ..mutation.policy import force_conflicts, matching
from ..policy.model import PolicySet
from ..state.store import ClusterState

FIELD_MANAGER = "routewarden"
SERVICE = GroupVersionKind("", "v1", "Service")
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
    """The mutation's answer for one Service. ``fields`` is None when it shapes none of it."""

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


# ----------------------------------------------------------------------------- the mutation
def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _map(obj: Mapping[str, Any], key: str) -> dict[str, str]:
    value = _meta(obj).get(key)
    return dict(value) if isinstance(value, dict) else {}


def mutated(service: dict[str, Any], *, old: dict[str, Any], policies: PolicySet,
            state: ClusterState) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``service`` as the mutating webhook would store it on an UPDATE with no request user."""
    meta = _meta(service)
    request = AdmissionRequest(
        uid="routewarden-reconcile", kind=SERVICE, request_kind=SERVICE, operation="UPDATE",
        name=str(meta.get("name") or ""), namespace=str(meta.get("namespace") or ""),
        object=service, old_object=old,
    )
    decision = engine.mutate(request, policies, state)
    result = jsonpatch.apply_patch(_copy(service), list(decision.patch), in_place=True) if decision.patch else service
    return result, decision.warnings


def _copy(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object (through orjson: several times faster than copy.deepcopy)."""
    try:
        return orjson.loads(orjson.dumps(obj))
    except (orjson.JSONEncodeError, TypeError):
        return copy.deepcopy(dict(obj))


def probe(service: Mapping[str, Any], owned: Owned) -> dict[str, Any]:
    """The Service without annotations and without the labels and traffic policy ``owned`` names."""
    out = _copy(service)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("annotations", None)
        labels = meta.get("labels")
        if isinstance(labels, dict):
            for key in owned.labels:
                labels.pop(key, None)
    spec = out.get("spec")
    if owned.external_traffic_policy and isinstance(spec, dict):
        spec.pop(ETP, None)
    return out


def _agreed(before: Mapping[str, str], probed: Mapping[str, str], stored: Mapping[str, str]) -> dict[str, str]:
    """What the mutation set on the probe and also arrives at on the stored object."""
    return {k: v for k, v in probed.items() if before.get(k) != v and stored.get(k) == v}


def _agreed_value(before: Any, probed: Any, stored: Any) -> str | None:
    return probed if isinstance(probed, str) and probed != before and stored == probed else None


def desired_fields(service: dict[str, Any], *, policies: PolicySet, state: ClusterState,
                   owned: Owned | None = None) -> Desired:
    """What routewarden applies to ``service`` (see the module docstring). Pure."""
    owned = owned if owned is not None else owned_by(service)
    try:
        implementation, gateway_key, why = describe_service(service, state)
    except gw.MalformedObject as exc:
        return Desired(None, why=f"cannot be read: {exc}")
    before = probe(service, owned)
    probed, warnings = mutated(before, old=service, policies=policies, state=state)
    if probed == before:
        return Desired(None, gateway_key, implementation, why, warnings=warnings)
    stored, _ = mutated(service, old=service, policies=policies, state=state)
    fields = Fields(
        annotations=_agreed({}, _map(probed, "annotations"), _map(stored, "annotations")),
        labels=_agreed(_map(before, "labels"), _map(probed, "labels"), _map(stored, "labels")),
        external_traffic_policy=_agreed_value(_spec(before).get(ETP), _spec(probed).get(ETP), _spec(stored).get(ETP)),
    )
    gateway = state.gateway(*gateway_key) if gateway_key else None
    chosen = matching(policies.services, gateway, state.namespace_labels(gateway.namespace)) if gateway else []
    return Desired(fields, gateway_key, implementation, why, tuple(p.name for p in chosen if p.service),
                   force_conflicts(chosen), warnings)


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

"""Shape the LoadBalancer Service a gateway controller generates, as ServicePolicies ask.

Two steps, both pure:

* :func:`plan_service` decides what one write of a Service gets: whether it is a
  generated Service, whether its writer is trusted (``trust.py``), and the exact values
  to set and to remove for this operation. It is a function of the Service, the
  operation and stored object, the writer (or None), the policies and the cluster view,
  so the webhook, ``routewarden check`` and a background reconciler compute the same
  values;
* :func:`apply_plan` writes a plan into a Service object (the engine's copy); the engine
  diffs it into a JSON Patch, so a Service already right gets none.

Rules that keep it safe to run on every CREATE and UPDATE:

* only Services of type LoadBalancer that a gateway controller generated, whose writer
  is that controller (or, without a writer, that sit where it creates them), whose
  Gateway is in the cluster view and matches a policy, get values. A Service that
  carries the marks but comes from anyone else gets nothing: a finding names the
  Gateway it imitates (``services/ImpersonatesGeneratedService``) when the marks arrive
  with this write, a warning when someone else updates a Service that already had them;
* annotations and labels others set are never removed. The one value routewarden takes
  back is the external-dns hostname it computed itself, recorded in the annotation
  ``routewarden.dev/external-dns-hostname`` (``<key>=<value>``): when the policies no
  longer compute a hostname, the annotation is removed if it still holds the recorded
  value, and left (with a warning) if someone changed it since. managedFields cannot
  tell: kube-apiserver records field ownership before mutating admission, so what a
  webhook sets is owned by no manager at all (measured on 1.36, tests/e2e);
* ``spec.loadBalancerClass`` and the create-only annotations of the profiles are set on
  CREATE and on an UPDATE that changes the type to LoadBalancer (Kubernetes allows the
  class then). On any other UPDATE they are never changed: a missing or different value
  is reported as a warning, and a value the stored object (``oldObject``) has but the
  write dropped is kept, because the API server would refuse the controller's update
  (class) or the cloud would re-provision (annotations);
* the external-dns hostname is recomputed from the Gateway on every write, so adding or
  removing listeners changes it on the Service's next update; between writes, the
  background reconciler (``webhook/reconcile``) applies the same plan when the Gateway,
  its routes or the policies change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import gatewayapi as gw
from ..admission import AdmissionRequest, UserInfo
from ..decision import Mode, Violation
from ..policy.model import PolicySet
from ..state.store import ClusterState
from .hostnames import external_dns_hostnames
from .implementations import Owner, identify
from .policy import DesiredService, desired_service, matching
from .trust import controller_for, judge, request_user

IMPERSONATION_RULE = "services/ImpersonatesGeneratedService"
HOSTNAME_RECORD = "routewarden.dev/external-dns-hostname"
# The field manager of the background reconciler's server-side applies (webhook/reconcile).
RECONCILER_FIELD_MANAGER = "routewarden"


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """What one write of a Service gets. Empty for anything that is not a generated Service."""

    implementation: str | None = None
    gateway: tuple[str, str] | None = None  # the Gateway the Service names
    why: str = ""  # how that Gateway was found, or why the Service is not a generated one
    trusted: bool = False
    trust: str = ""  # why the writer is (not) trusted
    policies: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)  # to set, final for this operation
    remove: frozenset[str] = frozenset()  # annotations to remove: only what routewarden itself set
    labels: Mapping[str, str] = field(default_factory=dict)
    load_balancer_class: str | None = None  # to set; None leaves the field alone
    external_traffic_policy: str | None = None
    warnings: tuple[str, ...] = ()
    finding: Violation | None = None  # services/ImpersonatesGeneratedService, mode warn


def _service_type(obj: Mapping[str, Any] | None) -> str | None:
    spec = obj.get("spec") if isinstance(obj, Mapping) else None
    return spec.get("type") if isinstance(spec, dict) else None


def _owner_refs(obj: Mapping[str, Any]) -> list[Any]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    if not isinstance(refs, list):
        raise gw.MalformedObject("metadata.ownerReferences", "expected a list")
    return refs


def plan_service(
    service: Mapping[str, Any],
    *,
    user: UserInfo | None,
    policies: PolicySet,
    state: ClusterState,
    operation: str = "UPDATE",
    old: Mapping[str, Any] | None = None,
    namespace: str = "",
) -> ServicePlan:
    """What ``service`` gets on this write, and whether its writer is trusted.

    ``user`` is the request's user, or None when there is no writer to judge (``check``,
    a reconciler): then the Service is recognised only in the namespaces where its
    controller creates Services. ``operation`` is ``CREATE`` or ``UPDATE``; ``old`` the
    stored object on UPDATE (a reconciler passes the live object as both). ``namespace``
    is used when the object has none (a CREATE names it in the request only). Raises
    :class:`~webhook.gatewayapi.MalformedObject` when fields have the wrong types.
    """
    if _service_type(service) != "LoadBalancer":
        return ServicePlan(why="not a LoadBalancer Service")
    meta = gw.Meta.from_object(service, default_namespace=namespace)
    owner = identify(service, state, namespace=meta.namespace)
    if owner.implementation is None or owner.gateway is None:
        return ServicePlan(implementation=owner.implementation, why=owner.why)
    gateway = state.gateway(*owner.gateway)
    chosen = matching(policies.services, gateway, state.namespace_labels(gateway.namespace)) if gateway else []
    controller = controller_for(owner.implementation, chosen)
    trust = judge(namespace=meta.namespace, owner_refs=_owner_refs(service), gateway=owner.gateway,
                  gateway_uid=gateway.meta.uid if gateway else "", user=user, controller=controller)
    found = {"implementation": owner.implementation, "gateway": owner.gateway, "why": owner.why,
             "trusted": trust.trusted, "trust": trust.why}
    where = f"Service {meta.namespace}/{meta.name}"
    named = f"Gateway {'/'.join(owner.gateway)}"
    if not trust.trusted:
        if _marks_are_new(owner, operation=operation, old=old, state=state, namespace=meta.namespace):
            return ServicePlan(**found, finding=_impersonation(meta.namespace, where, named, owner, trust.why, user))
        given = any(p.service is not None for p in chosen)  # someone else's update of a marked Service
        return ServicePlan(**found, warnings=(f"routewarden did not annotate {where} for {named}: {trust.why}",)
                           if given else ())
    if gateway is None:
        return ServicePlan(**found, warnings=(
            f"routewarden did not annotate {where}: its {named} ({owner.why}) {state.missing}, so the Service is "
            "admitted without the ServicePolicy's settings; they are added only when the Service is written again "
            "after the Gateway is in the view"
            + (", and a loadBalancerClass only at creation (recreate the Service to get one)"
               if operation == "CREATE" else ""),))
    desired = desired_service(chosen, gateway)
    create_like = operation == "CREATE" or old is None or _service_type(old) != "LoadBalancer"
    stored = _stored_annotations(old)
    values = _Values(where, dict(meta.annotations), stored, create_like)
    values.settle(desired)
    values.hostname(desired, gateway, state)
    spec = service["spec"]
    old_spec = old.get("spec") if old is not None else None
    lb_class = values.load_balancer_class(desired, spec.get("loadBalancerClass"),
                                          old_spec.get("loadBalancerClass") if isinstance(old_spec, dict) else None)
    etp = desired.external_traffic_policy
    return ServicePlan(
        **found,
        policies=desired.policies,
        annotations=values.set,
        remove=frozenset(values.remove),
        labels=dict(desired.labels),
        load_balancer_class=lb_class,
        external_traffic_policy=etp if etp and spec.get("externalTrafficPolicy") != etp else None,
        warnings=tuple(values.warnings),
    )


def _stored_annotations(old: Mapping[str, Any] | None) -> Mapping[str, str]:
    if old is None:
        return {}
    try:
        return gw.Meta.from_object(old).annotations
    except gw.MalformedObject:
        return {}


def _marks_are_new(owner: Owner, *, operation: str, old: Mapping[str, Any] | None, state: ClusterState,
                   namespace: str) -> bool:
    """Whether this write brings the marks: a CREATE, a type change to LoadBalancer, or
    labels / ownerReferences that now name another Gateway or implementation."""
    if operation == "CREATE" or old is None or _service_type(old) != "LoadBalancer":
        return True
    try:
        before = identify(old, state, namespace=namespace)
    except gw.MalformedObject:
        return True
    return (before.implementation, before.gateway) != (owner.implementation, owner.gateway)


def _impersonation(namespace: str, where: str, named: str, owner: Owner, why: str, user: UserInfo | None) -> Violation:
    implementation = owner.implementation
    if user is not None:
        fix = (f"routewarden gives a Service values only from the controller's own writes: remove the marks "
               f"({owner.why}) from this Service, or, if {user.username} is {implementation}'s controller, "
               f"list it in spec.controllers.{implementation} of the ServicePolicy that matches the Gateway")
    else:
        fix = (f"remove the marks ({owner.why}), or, if {implementation} does put Services in namespace {namespace}, "
               f"list it in spec.controllers.{implementation}.serviceNamespaces of the ServicePolicy that matches "
               "the Gateway")
    return Violation(
        IMPERSONATION_RULE,
        "ImpersonatesGeneratedService",
        f"{where} carries {implementation}'s marks for {named}, but {why}; routewarden gives it nothing",
        field="metadata",
        fix=fix,
        mode=Mode.WARN,
    )


class _Values:
    """The annotation values of one plan, settled key by key (see the module docstring)."""

    def __init__(self, where: str, current: dict[str, str], stored: Mapping[str, str], create_like: bool) -> None:
        self.where = where
        self.current = current
        self.stored = stored
        self.create_like = create_like
        self.set: dict[str, str] = {}
        self.remove: set[str] = set()
        self.warnings: list[str] = []

    def settle(self, desired: DesiredService) -> None:
        create_only = desired.create_only
        for key, value in desired.annotations.items():
            current = self.current.get(key)
            if key in create_only and not self.create_like:
                self._keep_create_only(key, value, current, desired)
            elif current is not None and current != value and key in desired.keep_others:
                self.warnings.append(f"{self.where}: kept {key}={current!r} (policy value {value!r}; conflicts: keep)")
            else:
                self.set[key] = value

    def _keep_create_only(self, key: str, value: str, current: str | None, desired: DesiredService) -> None:
        stored = self.stored.get(key)
        if current is None and stored is not None:
            self.set[key] = stored  # the write dropped a create-only value: the live load balancer keeps it
            current = stored
        if current == value:
            return
        have = f"has {key}={current!r}" if current is not None else f"has no {key}"
        self.warnings.append(
            f"{self.where} {have} but policy {', '.join(desired.policies)} asks for {value!r}; {key} takes effect "
            "only when the load balancer is created, so routewarden sets it only at creation: delete the Service "
            "so that its controller recreates it"
        )

    def hostname(self, desired: DesiredService, gateway: gw.Gateway, state: ClusterState) -> None:
        """Set the computed external-dns hostname, or take back the one routewarden set."""
        config = desired.external_dns
        names = external_dns_hostnames(gateway, state, config) if config is not None else ()
        recorded_key, _, recorded = self.current.get(HOSTNAME_RECORD, "").partition("=")
        if names and config is not None:
            value = ",".join(names)
            self.set[config.hostname_key] = value
            self.set[HOSTNAME_RECORD] = f"{config.hostname_key}={value}"
            if self._ours(recorded_key, recorded):
                self.remove.add(recorded_key)  # the policy moved to another prefix: the old key was ours
            return
        source = f"Gateway {gateway.namespace}/{gateway.name} has no hostname to publish" + (
            f" ({', '.join(config.sources)})" if config is not None else " (no policy computes one)")
        if HOSTNAME_RECORD in self.current:
            self.remove.add(HOSTNAME_RECORD)
            if self._ours(recorded_key, recorded):
                self.remove.add(recorded_key)
                self.warnings.append(f"{self.where}: removed {recorded_key}={recorded!r}, which routewarden had set: {source}")
            elif recorded_key in self.current:
                self.warnings.append(f"{self.where}: {source}; {recorded_key} was changed since routewarden set it, "
                                     "so it is left as it is")
        elif config is not None:
            self.warnings.append(f"{self.where}: {source}; {config.hostname_key} left as it is")

    def _ours(self, key: str, recorded: str) -> bool:
        """Whether ``key`` still holds the value routewarden recorded, and no policy sets it now."""
        return bool(key) and key not in self.set and self.current.get(key) == recorded

    def load_balancer_class(self, desired: DesiredService, current: str | None, stored: str | None) -> str | None:
        """The class to set, if any (see the module docstring)."""
        wanted = desired.load_balancer_class
        if wanted is None or current == wanted:
            return None
        if self.create_like:
            return wanted
        if current is None and stored is not None:
            if stored != wanted:
                self.warnings.append(self._class_warning(desired, f"has loadBalancerClass {stored!r}"))
            return stored  # keep the stored, immutable value, or the API server refuses the write
        have = f"has loadBalancerClass {current!r}" if current is not None else "has no loadBalancerClass"
        self.warnings.append(self._class_warning(desired, have))
        return None

    def _class_warning(self, desired: DesiredService, have: str) -> str:
        return (f"{self.where} {have} but policy {', '.join(desired.policies)} asks for "
                f"{desired.load_balancer_class!r}; the class is immutable once the Service is a load balancer, so "
                "routewarden sets it only at creation or when the type changes to LoadBalancer: delete the Service "
                "so that its controller recreates it")


def apply_plan(obj: dict[str, Any], plan: ServicePlan) -> None:
    """Write ``plan`` into the Service ``obj``: set and remove annotations, set labels and spec fields."""
    metadata = obj.setdefault("metadata", {})
    before = dict(metadata.get("annotations") or {})
    annotations = {**before, **plan.annotations}
    for key in plan.remove:
        annotations.pop(key, None)
    _set_map(metadata, "annotations", before, annotations)
    labels = dict(metadata.get("labels") or {})
    _set_map(metadata, "labels", labels, {**labels, **plan.labels})
    spec = obj["spec"]
    if plan.load_balancer_class is not None:
        spec["loadBalancerClass"] = plan.load_balancer_class
    if plan.external_traffic_policy is not None:
        spec["externalTrafficPolicy"] = plan.external_traffic_policy


def _set_map(metadata: dict[str, Any], key: str, before: Mapping[str, str], after: dict[str, str]) -> None:
    """Write only when something changes, so an absent map does not become an empty one."""
    if after != dict(before):
        metadata[key] = after


def annotate_generated_service(
    obj: dict[str, Any], *, request: AdmissionRequest, policies: PolicySet, state: ClusterState
) -> list[str | Violation]:
    """Give a generated Service what the matching ServicePolicies ask, if its writer is trusted."""
    if _service_type(obj) != "LoadBalancer":
        return []
    if not policies.services and HOSTNAME_RECORD not in ((obj.get("metadata") or {}).get("annotations") or {}):
        return []  # no ServicePolicy, and nothing routewarden set to take back
    plan = plan_service(obj, user=request_user(request), policies=policies, state=state,
                        operation=request.operation, old=request.old_object, namespace=request.namespace)
    if plan.finding is not None:
        return [plan.finding] if policies.services else []
    if plan.trusted:
        apply_plan(obj, plan)
    elif _reconciler_apply(request):
        return []  # the reconciler applies this very plan: "did not annotate" would only be noise
    return list(plan.warnings)


def _reconciler_apply(request: AdmissionRequest) -> bool:
    """A server-side apply under the reconciler's field manager by a ServiceAccount. The
    field manager is the client's word, so this only silences the warning of an update by
    someone other than the controller; it never makes a writer trusted, and a write that
    brings a controller's marks is judged (``plan.finding``) before this is asked."""
    options = request.options or {}
    return options.get("fieldManager") == RECONCILER_FIELD_MANAGER and request.user.service_account is not None

"""Offline evaluation: the webhook's engine run over manifests instead of AdmissionReviews.

``routewarden check`` and ``routewarden test`` evaluate each object as the CREATE the
apiserver would send: the mutating call first, then the validating call on the mutated
object, exactly as kube-apiserver orders them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import jsonpatch

from .admission import AdmissionRequest, GroupVersionKind, UserInfo
from .decision import Decision, Violation, allowed
from .engine import decide
from .gatewayapi import MalformedObject
from .mutation import describe_service, plan_service
from .mutation.trust import OFFLINE_USERNAME
from .policy.model import PolicySet
from .state.kinds import unserved_version, watched_kind_of
from .state.store import ClusterState

# Not a writer: the Service mutation applies its rule for an unknown writer (mutation/trust.py).
OFFLINE_USER = UserInfo(username=OFFLINE_USERNAME, groups=("system:authenticated",))


# Kinds without a namespace; every other kind in a manifest without metadata.namespace
# lands in the namespace kubectl, Flux or Argo CD would put it in (``default`` unless set).
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace", "GatewayClass", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
        "PersistentVolume", "StorageClass", "PriorityClass", "Node", "APIService", "IngressClass",
        "RuntimeClass", "ClusterPolicyReport", "ClusterIssuer", "CSIDriver", "VolumeSnapshotClass",
    }
)


def with_namespace(obj: Mapping[str, Any], namespace: str = "default") -> dict[str, Any]:
    """``obj`` with ``metadata.namespace`` set when its kind is namespaced and it has none."""
    meta = obj.get("metadata")
    if obj.get("kind") in CLUSTER_SCOPED_KINDS or not isinstance(meta, dict) or meta.get("namespace"):
        return dict(obj)
    return {**obj, "metadata": {**meta, "namespace": namespace}}


def gvk_of(obj: Mapping[str, Any]) -> GroupVersionKind:
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    return GroupVersionKind(group=group, version=version, kind=str(obj.get("kind") or ""))


def synthesize_request(
    obj: Mapping[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: Mapping[str, Any] | None = None,
    user: UserInfo = OFFLINE_USER,
    dry_run: bool = True,
) -> AdmissionRequest:
    """The AdmissionRequest kube-apiserver would send for ``obj``."""
    subject = obj if obj is not None else old or {}
    meta = subject.get("metadata") or {}
    return AdmissionRequest(
        uid=str(uuid.uuid4()),
        kind=gvk_of(subject),
        request_kind=gvk_of(subject),
        operation=operation,
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
        user=user,
        object=dict(obj) if obj is not None else None,
        old_object=dict(old) if old is not None else None,
        dry_run=dry_run,
        options={"kind": f"{operation.title()}Options", "apiVersion": "meta.k8s.io/v1"},
    )


@dataclass(frozen=True, slots=True)
class ObjectResult:
    """What the webhook would answer for one object: the validation and the mutation."""

    object: Mapping[str, Any]
    validation: Decision
    mutation: Decision
    source: str = ""
    line: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Against a baseline: "added", "modified" (judged as an UPDATE of the baseline's
    # object) or "unchanged" (not judged); "" without a baseline.
    change: str = ""
    # Why the webhook would never see it (a namespace its configurations exclude); "" if it would.
    skipped: str = ""
    notes: tuple[str, ...] = ()  # warnings of the offline check itself (an apiVersion not served)
    # What the offline check wants the reader to know but that is not a warning (why a
    # Service was taken for a controller's without a request user): never fails a check.
    info: tuple[str, ...] = ()

    @property
    def judged(self) -> bool:
        return self.change != "unchanged" and not self.skipped

    @property
    def allowed(self) -> bool:
        return self.validation.allowed and self.mutation.allowed

    @property
    def violations(self) -> tuple[Violation, ...]:
        return self.validation.violations

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.notes + self.mutation.warnings + self.validation.warnings))

    @property
    def patch(self) -> tuple[dict[str, Any], ...]:
        return self.mutation.patch

    @property
    def ref(self) -> str:
        meta = self.object.get("metadata") or {}
        ns = meta.get("namespace")
        name = meta.get("name", "")
        return f"{self.object.get('kind', '')}/{ns}/{name}" if ns else f"{self.object.get('kind', '')}/{name}"


def evaluate(
    obj: Mapping[str, Any],
    policies: PolicySet,
    state: ClusterState,
    *,
    operation: str = "CREATE",
    old: Mapping[str, Any] | None = None,
    user: UserInfo = OFFLINE_USER,
) -> tuple[Decision, Decision]:
    """(validation, mutation) for one object: mutate first, then validate the mutated object."""
    request = synthesize_request(obj, operation=operation, old=old, user=user)
    mutation = decide(request, policies, state, webhook="mutate")
    mutated = obj
    if mutation.patch and obj is not None:
        mutated = jsonpatch.apply_patch(dict(obj), list(mutation.patch))
        request = synthesize_request(mutated, operation=operation, old=old, user=user)
    validation = decide(request, policies, state, webhook="validate")
    return validation, mutation


def store_mutated(objects: Iterable[Mapping[str, Any]], policies: PolicySet, state: ClusterState) -> None:
    """Put into ``state`` the objects as the apiserver would store them: mutated.

    A Gateway the mutating webhook gives ``allowedRoutes`` is stored with them, and its
    routes attach to the stored Gateway; judging them against the manifest as written
    would deny what the cluster will admit.
    """
    for obj in objects:
        watched = watched_kind_of(obj)
        if watched is None:
            continue
        kind = watched.kind
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        stored = state.get(kind, str(meta.get("namespace") or ""), str(meta.get("name") or "")) or obj
        mutation = decide(synthesize_request(stored), policies, state, webhook="mutate")
        if mutation.patch:  # the stored copy keeps what a live listing gave it (creationTimestamp)
            state.apply(kind, jsonpatch.apply_patch(dict(stored), list(mutation.patch)))


Identity = tuple[str, str, str, str]  # (API group, kind, namespace, name)


def identity(obj: Mapping[str, Any]) -> Identity:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    return (gvk_of(obj).group, str(obj.get("kind") or ""), str(meta.get("namespace") or ""),
            str(meta.get("name") or ""))


@dataclass(frozen=True, slots=True)
class Baseline:
    """What exists before a change (the target branch, or a rendered directory).

    The change's objects are judged against it: one it does not hold is *added*, newer
    than everything it holds (manifests carry no creation time, so this is the only
    order offline); one it holds in another form is *modified*, judged as the UPDATE
    of the baseline's object; one it holds unchanged is not judged at all.
    """

    objects: Mapping[Identity, Mapping[str, Any]]

    @classmethod
    def of(cls, objects: Iterable[Mapping[str, Any]]) -> Baseline:
        return cls({identity(obj): obj for obj in objects})

    def change(self, obj: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None]:
        old = self.objects.get(identity(obj))
        if old is None:
            return "added", None
        return ("unchanged" if old == obj else "modified"), old


def mark_added(state: ClusterState, objects: Iterable[Mapping[str, Any]]) -> None:
    """Tell ``state`` which objects are new: they claim hostnames after everything else."""
    for obj in objects:
        _, kind, namespace, name = identity(obj)
        if watched_kind_of(obj) is not None:
            state.added.add((kind, namespace, name))


def evaluate_all(
    objects: Iterable[tuple[Mapping[str, Any], str, int | None]],
    policies: PolicySet,
    state: ClusterState,
    *,
    baseline: Baseline | None = None,
    skip: Callable[[Mapping[str, Any]], str] | None = None,
) -> list[ObjectResult]:
    """Evaluate (object, source file, line) triples against ``state``, which first takes
    the mutated form of every object (:func:`store_mutated`): each as a CREATE, or, with
    a ``baseline``, only what the change adds (CREATE) or modifies (UPDATE). ``skip``
    gives the reason an object is not judged at all (a namespace the webhook excludes)."""
    objects = list(objects)
    if baseline is not None:
        mark_added(state, (obj for obj, _, _ in objects if baseline.change(obj)[0] == "added"))
    store_mutated((obj for obj, _, _ in objects), policies, state)
    results = []
    for obj, source, line in objects:
        change, old = baseline.change(obj) if baseline is not None else ("", None)
        skipped = skip(obj) if skip is not None else ""
        if skipped:
            results.append(ObjectResult(obj, allowed(), allowed(), source=source, line=line, change=change,
                                        skipped=skipped))
            continue
        if change == "unchanged":
            results.append(ObjectResult(obj, allowed(), allowed(), source=source, line=line, change=change))
            continue
        operation = "UPDATE" if old is not None else "CREATE"
        validation, mutation = evaluate(obj, policies, state, operation=operation, old=old)
        notes = tuple(filter(None, [unserved_version(obj)]))
        info = _trust_note(obj, policies, state) if mutation.patch else ()
        results.append(ObjectResult(obj, validation, mutation, source=source, line=line, change=change, notes=notes,
                                    info=info))
    return one_service_per_gateway(results, state)


def _trust_note(obj: Mapping[str, Any], policies: PolicySet, state: ClusterState) -> tuple[str, ...]:
    """Why a Service got values without a request user (offline, the namespace decides)."""
    if obj.get("kind") != "Service" or gvk_of(obj).group != "":
        return ()
    try:
        plan = plan_service(dict(obj), user=None, policies=policies, state=state, operation="CREATE")
    except MalformedObject:
        return ()
    return (plan.trust,) if plan.trusted and plan.trust else ()


def one_service_per_gateway(results: list[ObjectResult], state: ClusterState) -> list[ObjectResult]:
    """Report generated Services given values for the same Gateway. At admission only the
    controller's own write gets them; offline the writer is unknown, so each is warned."""
    given: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, result in enumerate(results):
        if result.object.get("kind") != "Service" or not result.patch:
            continue
        try:
            _, gateway, _ = describe_service(result.object, state)
        except MalformedObject:
            continue
        if gateway is not None:
            given[gateway].append(i)
    out = list(results)
    for gateway, indexes in given.items():
        if len(indexes) < 2:
            continue
        names = ", ".join(results[i].ref.removeprefix("Service/") for i in indexes)
        note = (f"Services {names} all resolve to Gateway {'/'.join(gateway)}: without a request user routewarden "
                "cannot tell which one its controller wrote, so each gets the Gateway's values here; at admission "
                "only the controller's own write gets them")
        for i in indexes:
            out[i] = replace(out[i], mutation=replace(out[i].mutation, warnings=(*out[i].mutation.warnings, note)))
    return out

"""Shape the LoadBalancer Service a gateway controller generates, as ServicePolicies ask.

The mutator changes the object it is given (the engine's copy) and returns warnings;
the engine diffs the copy into a JSON Patch, so a Service already right gets none.

Rules that keep it safe to run on every CREATE and UPDATE:

* only Services of type LoadBalancer that a gateway controller generated, whose
  Gateway is in the cluster view and matches a policy, are touched;
* annotations and labels are only added or set, never removed: what the controller,
  a cloud controller or a person added stays;
* ``spec.loadBalancerClass`` is immutable once set, so it is set on CREATE only. On
  UPDATE a missing or different class is reported as a warning and left alone, with one
  exception: when the stored object (``oldObject``) already has the class the policy
  asks for and the controller's write dropped it, it is kept, because the API server
  would otherwise refuse the controller's update ("field is immutable");
* the external-dns hostname is recomputed from the Gateway on every write, so adding or
  removing listeners changes it on the Service's next update.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import gatewayapi as gw
from ..admission import AdmissionRequest
from ..policy.model import PolicySet
from ..state.store import ClusterState
from .hostnames import external_dns_hostnames
from .implementations import identify
from .policy import DesiredService, desired_service, matching


def _service_type(obj: Mapping[str, Any]) -> str | None:
    spec = obj.get("spec")
    return spec.get("type") if isinstance(spec, dict) else None


def annotate_generated_service(
    obj: dict[str, Any], *, request: AdmissionRequest, policies: PolicySet, state: ClusterState
) -> list[str]:
    """Add the annotations, labels, class and traffic policy the matching ServicePolicies give."""
    if not policies.services or _service_type(obj) != "LoadBalancer":
        return []
    owner = identify(obj, state, namespace=request.namespace)
    if owner.implementation is None or owner.gateway is None:
        return []
    where = f"Service {request.namespace}/{request.name or (obj.get('metadata') or {}).get('name', '')}"
    gateway = state.gateway(*owner.gateway)
    if gateway is None:
        return [
            f"routewarden did not annotate {where}: its Gateway {'/'.join(owner.gateway)} ({owner.why}) "
            f"{state.missing}, so the Service is admitted without the ServicePolicy's settings; they are added "
            "only when the Service is written again after the Gateway is in the view"
            + (", and a loadBalancerClass only at creation (recreate the Service to get one)"
               if request.operation == "CREATE" else "")
        ]
    chosen = matching(policies.services, gateway, state.namespace_labels(gateway.namespace))
    desired = desired_service(chosen, gateway)
    if not desired.policies:
        return []
    warnings = _apply_metadata(obj, desired, gateway, state, where=where)
    warnings += _apply_class(obj, desired, request, where=where)
    if desired.external_traffic_policy and obj["spec"].get("externalTrafficPolicy") != desired.external_traffic_policy:
        obj["spec"]["externalTrafficPolicy"] = desired.external_traffic_policy
    return warnings


def _apply_metadata(
    obj: dict[str, Any], desired: DesiredService, gateway: gw.Gateway, state: ClusterState, *, where: str
) -> list[str]:
    meta = gw.Meta.from_object(obj)  # raises MalformedObject on wrong types
    warnings: list[str] = []
    annotations = dict(meta.annotations)
    for key, value in desired.annotations.items():
        current = annotations.get(key)
        if current is not None and current != value and key in desired.keep_others:
            warnings.append(f"{where}: kept {key}={current!r} (policy value {value!r}; conflicts: keep)")
            continue
        annotations[key] = value
    if desired.external_dns is not None:
        names = external_dns_hostnames(gateway, state, desired.external_dns)
        if names:
            annotations[desired.external_dns.hostname_key] = ",".join(names)
        else:
            warnings.append(
                f"{where}: Gateway {gateway.namespace}/{gateway.name} has no hostname to publish "
                f"({', '.join(desired.external_dns.sources)}); {desired.external_dns.hostname_key} left as it is"
            )
    _set_map(obj.setdefault("metadata", {}), "annotations", meta.annotations, annotations)
    labels = {**meta.labels, **desired.labels}
    _set_map(obj["metadata"], "labels", meta.labels, labels)
    return warnings


def _set_map(metadata: dict[str, Any], key: str, before: Mapping[str, str], after: dict[str, str]) -> None:
    """Write only when something changes, so an absent map does not become an empty one."""
    if after != dict(before):
        metadata[key] = after


def _apply_class(obj: dict[str, Any], desired: DesiredService, request: AdmissionRequest, *, where: str) -> list[str]:
    wanted = desired.load_balancer_class
    spec = obj["spec"]
    current = spec.get("loadBalancerClass")
    if wanted is None or current == wanted:
        return []
    if request.operation == "CREATE":
        spec["loadBalancerClass"] = wanted
        return []
    old = (request.old_object or {}).get("spec")
    if current is None and isinstance(old, dict) and old.get("loadBalancerClass") == wanted:
        spec["loadBalancerClass"] = wanted  # keep the stored, immutable value (see the module docstring)
        return []
    have = f"has loadBalancerClass {current!r}" if current is not None else "has no loadBalancerClass"
    return [
        (f"{where} {have} but policy {', '.join(desired.policies)} asks for {wanted!r}; the class is immutable "
        "once the Service exists, so routewarden sets it only at creation: delete the Service so that its "
        "controller recreates it")
    ]

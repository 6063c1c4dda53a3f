"""A deterministic cluster and the AdmissionReviews a busy cluster sends, for the benchmarks.

The cluster: ``routes`` HTTPRoutes spread over ``namespaces`` team namespaces (labelled
``team=<name>``), ``gateways`` shared Gateways of class ``cilium`` in ten platform
namespaces (labelled ``platform=true``), and ``grants`` ReferenceGrants, each letting
the routes of one neighbouring namespace use the Services of its namespace. Every route
is valid under the bench policies, so the audit finds nothing and reviews are allowed:
the benchmark measures the work of checking, not the rarer work of denying.

The reviews are shaped like kube-apiserver's (``/work/shared/admission-reviews``):

* ``route-create``: an HTTPRoute CREATE with 3 parentRefs, 4 hostnames, 6 rules and
  cross-namespace backendRefs (each permitted by a grant), managedFields included;
* ``route-update``: an UPDATE of a route in the view, adding a hostname;
* ``service-update``: an UPDATE of the LoadBalancer Service Cilium generates for a
  Gateway, which the ServicePolicy annotates (a JSON Patch in the answer).

Everything derives from ``random.Random(seed)``: same arguments, same bytes.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

GROUP = "gateway.networking.k8s.io"
PLATFORM_NAMESPACES = 10
CREATED = "2026-01-01T00:00:00Z"
USER = {
    "username": "system:serviceaccount:argocd:argocd-application-controller",
    "uid": "5b1b8a4e-0000-4000-8000-000000000001",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated"],
}
# Cilium's operator writes the Services it generates (routewarden annotates only the controller's own writes).
CILIUM_OPERATOR = {
    "username": "system:serviceaccount:kube-system:cilium-operator",
    "uid": "5b1b8a4e-0000-4000-8000-000000000002",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
}
WORKLOADS = ("route-create", "route-update", "service-update")
# The mixed load: what one apiserver sends while teams deploy (validate) and gateway
# controllers reconcile their Services (mutate).
MIX = ("route-create", "route-update", "route-create", "service-update")


@dataclass(frozen=True, slots=True)
class Size:
    routes: int = 10_000
    namespaces: int = 2_000
    gateways: int = 50
    grants: int = 5_000


def team(i: int, size: Size) -> str:
    return f"team-{i % size.namespaces:04d}"


def platform(i: int) -> str:
    return f"gw-{i % PLATFORM_NAMESPACES:02d}"


def gateway_key(g: int) -> tuple[str, str]:
    return platform(g), f"shared-{g:02d}"


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# --------------------------------------------------------------------------- the cluster
def namespaces(size: Size) -> Iterator[dict[str, Any]]:
    for i in range(size.namespaces):
        name = team(i, size)
        yield {"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": name, "labels": {"team": name, "tier": "ab"[i % 2]}}}
    for i in range(PLATFORM_NAMESPACES):
        yield {"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": platform(i), "labels": {"platform": "true"}}}


def _listener(name: str, port: int, protocol: str) -> dict[str, Any]:
    listener: dict[str, Any] = {
        "name": name, "port": port, "protocol": protocol, "hostname": "*.example.com",
        "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {
            "matchExpressions": [{"key": "team", "operator": "Exists"}]}}},
    }
    if protocol == "HTTPS":
        listener["tls"] = {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "wildcard-tls"}]}
    return listener


def gateways(size: Size) -> Iterator[dict[str, Any]]:
    yield {"apiVersion": f"{GROUP}/v1", "kind": "GatewayClass", "metadata": {"name": "cilium"},
           "spec": {"controllerName": "io.cilium/gateway-controller"}}
    for g in range(size.gateways):
        ns, name = gateway_key(g)
        yield {"apiVersion": f"{GROUP}/v1", "kind": "Gateway",
               "metadata": {"name": name, "namespace": ns, "uid": f"00000000-0000-4000-8000-{g:012d}",
                            "creationTimestamp": CREATED},
               "spec": {"gatewayClassName": "cilium",
                        "listeners": [_listener("http", 80, "HTTP"), _listener("https", 443, "HTTPS")]}}


def grants(size: Size) -> Iterator[dict[str, Any]]:
    """Grant j lives in namespace j and admits the routes of namespace j + 1 + j // namespaces."""
    for j in range(size.grants):
        to_ns = team(j, size)
        from_ns = team(j + 1 + j // size.namespaces, size)
        yield {"apiVersion": f"{GROUP}/v1beta1", "kind": "ReferenceGrant",
               "metadata": {"name": f"from-{from_ns}", "namespace": to_ns},
               "spec": {"from": [{"group": GROUP, "kind": "HTTPRoute", "namespace": from_ns}],
                        "to": [{"group": "", "kind": "Service"}]}}


def granted_namespace(ns_index: int, k: int, size: Size) -> str:
    """A namespace whose grant admits routes of namespace ``ns_index`` (k = 1, 2)."""
    return team(ns_index - k, size)


def _parent_refs(rng: random.Random, count: int, size: Size) -> list[dict[str, Any]]:
    chosen = rng.sample(range(size.gateways), count)
    return [{"group": GROUP, "kind": "Gateway", "namespace": gateway_key(g)[0], "name": gateway_key(g)[1],
             "sectionName": "http"} for g in chosen]


def _rules(rng: random.Random, ns_index: int, count: int, size: Size) -> list[dict[str, Any]]:
    rules = []
    for r in range(count):
        backends: list[dict[str, Any]] = [{"group": "", "kind": "Service", "name": f"svc-{r}", "port": 8080,
                                           "weight": 90}]
        if r % 2 == 0:
            backends.append({"group": "", "kind": "Service", "name": f"shared-{r}", "port": 8080, "weight": 10,
                             "namespace": granted_namespace(ns_index, 1 + rng.randrange(2), size)})
        rules.append({
            "matches": [{"path": {"type": "PathPrefix", "value": f"/api/v{r}"},
                         "headers": [{"type": "Exact", "name": "x-tenant", "value": f"t{r}"}]}],
            "filters": [{"type": "RequestHeaderModifier",
                         "requestHeaderModifier": {"set": [{"name": "x-route", "value": f"r{r}"}]}}],
            "backendRefs": backends,
        })
    return rules


def route(i: int, size: Size, rng: random.Random) -> dict[str, Any]:
    ns_index = i % size.namespaces
    ns = team(ns_index, size)
    hosts = [f"app{i}-{h}.{ns}.example.com" for h in range(1 + rng.randrange(3))]
    return {"apiVersion": f"{GROUP}/v1", "kind": "HTTPRoute",
            "metadata": {"name": f"route-{i}", "namespace": ns, "uid": _uid(rng), "generation": 1,
                         "creationTimestamp": CREATED, "resourceVersion": str(1000 + i)},
            "spec": {"parentRefs": _parent_refs(rng, 1 + rng.randrange(3), size), "hostnames": hosts,
                     "rules": _rules(rng, ns_index, 1 + rng.randrange(3), size)}}


def routes(size: Size, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(size.routes):
        yield route(i, size, rng)


def cluster(size: Size, seed: int = 1) -> list[dict[str, Any]]:
    return [*namespaces(size), *gateways(size), *grants(size), *routes(size, seed)]


def write_cluster(directory: Path, size: Size, seed: int = 1) -> Path:
    """The cluster as one JSON ``List`` manifest (what ``serve --state`` reads)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "cluster.json"
    path.write_bytes(orjson.dumps({"apiVersion": "v1", "kind": "List", "items": cluster(size, seed)}))
    return path


# --------------------------------------------------------------------------- reviews
def _managed_fields(manager: str) -> list[dict[str, Any]]:
    return [{"manager": manager, "operation": "Apply", "apiVersion": f"{GROUP}/v1", "time": CREATED,
             "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:hostnames": {}, "f:parentRefs": {}, "f:rules": {}}}}]


def review(obj: dict[str, Any], *, kind: dict[str, str], resource: str, operation: str,
           old: dict[str, Any] | None, rng: random.Random, user: dict[str, Any] = USER) -> dict[str, Any]:
    meta = obj["metadata"]
    gvr = {"group": kind["group"], "version": kind["version"], "resource": resource}
    options_kind = "CreateOptions" if operation == "CREATE" else "UpdateOptions"
    return {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {
        "uid": _uid(rng), "kind": kind, "resource": gvr, "requestKind": kind, "requestResource": gvr,
        "name": meta["name"], "namespace": meta["namespace"], "operation": operation, "userInfo": user,
        "object": obj, "oldObject": old, "dryRun": False,
        "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1", "fieldManager": "argocd-controller"}}}


ROUTE_KIND = {"group": GROUP, "version": "v1", "kind": "HTTPRoute"}
SERVICE_KIND = {"group": "", "version": "v1", "kind": "Service"}


def route_create(n: int, size: Size, rng: random.Random) -> dict[str, Any]:
    """A new HTTPRoute: 3 parentRefs, 4 hostnames, 6 rules, cross-namespace backendRefs."""
    ns_index = rng.randrange(size.namespaces)
    ns = team(ns_index, size)
    obj = {"apiVersion": f"{GROUP}/v1", "kind": "HTTPRoute",
           "metadata": {"name": f"new-{n}", "namespace": ns, "uid": _uid(rng), "generation": 1,
                        "creationTimestamp": CREATED, "managedFields": _managed_fields("argocd-controller"),
                        "labels": {"app.kubernetes.io/instance": f"new-{n}"}},
           "spec": {"parentRefs": _parent_refs(rng, 3, size),
                    "hostnames": [f"new{n}-{h}.{ns}.example.com" for h in range(4)],
                    "rules": _rules(rng, ns_index, 6, size)}}
    return review(obj, kind=ROUTE_KIND, resource="httproutes", operation="CREATE", old=None, rng=rng)


def generated_service(g: int, *, annotations: dict[str, str]) -> dict[str, Any]:
    ns, name = gateway_key(g)
    return {"kind": "Service", "apiVersion": "v1", "metadata": {
        "name": f"cilium-gateway-{name}", "namespace": ns, "uid": f"10000000-0000-4000-8000-{g:012d}",
        "resourceVersion": str(500 + g), "creationTimestamp": CREATED,
        "labels": {"gateway.networking.k8s.io/gateway-name": name, "io.cilium.gateway/owning-gateway": name},
        "annotations": annotations,
        "ownerReferences": [{"apiVersion": f"{GROUP}/v1", "kind": "Gateway", "name": name,
                             "uid": f"00000000-0000-4000-8000-{g:012d}", "controller": True}],
        "managedFields": [{"manager": "cilium-operator-generic", "operation": "Update", "apiVersion": "v1",
                           "time": CREATED, "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {}, "f:ownerReferences": {}},
                                        "f:spec": {"f:ports": {}, "f:type": {}}}}]},
        "spec": {"ports": [{"name": "port-80", "protocol": "TCP", "port": 80, "targetPort": 80, "nodePort": 30080},
                           {"name": "port-443", "protocol": "TCP", "port": 443, "targetPort": 443,
                            "nodePort": 30443}],
                 "clusterIP": f"10.0.{g}.10", "clusterIPs": [f"10.0.{g}.10"], "type": "LoadBalancer",
                 "sessionAffinity": "None", "externalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"],
                 "loadBalancerClass": "service.k8s.aws/nlb",
                 "ipFamilyPolicy": "SingleStack", "allocateLoadBalancerNodePorts": True,
                 "internalTrafficPolicy": "Cluster"},
        "status": {"loadBalancer": {}}}


def service_update(n: int, size: Size, rng: random.Random) -> dict[str, Any]:
    """Cilium rewrites its generated Service, dropping the annotations routewarden adds."""
    g = rng.randrange(size.gateways)
    old = generated_service(g, annotations={"external-dns.alpha.kubernetes.io/hostname": "*.example.com"})
    new = generated_service(g, annotations={})
    return review(new, kind=SERVICE_KIND, resource="services", operation="UPDATE", old=old, rng=rng,
                  user=CILIUM_OPERATOR)


def reviews(workload: str, count: int, size: Size, seed: int = 1) -> list[tuple[str, dict[str, Any]]]:
    """``count`` reviews as ``(webhook path, AdmissionReview)``; ``mix`` interleaves :data:`MIX`."""
    rng = random.Random(f"{seed}-{workload}")
    out: list[tuple[str, dict[str, Any]]] = []
    updates: Iterator[dict[str, Any]] | None = None
    for n in range(count):
        kind = MIX[n % len(MIX)] if workload == "mix" else workload
        if kind == "route-create":
            out.append(("/validate", route_create(n, size, rng)))
        elif kind == "route-update":
            if updates is None:
                updates = _route_updates(size, seed, rng)
            out.append(("/validate", next(updates)))
        elif kind == "service-update":
            out.append(("/mutate", service_update(n, size, rng)))
        else:
            raise ValueError(f"unknown workload {workload!r}")
    return out


def _route_updates(size: Size, seed: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Updates of routes picked in one pass over the generated routes (not one pass each)."""
    picks = sorted(rng.sample(range(size.routes), min(size.routes, 512)))
    gen = random.Random(seed)
    chosen: list[dict[str, Any]] = []
    wanted = iter(picks)
    target = next(wanted, None)
    for i in range(size.routes):
        obj = route(i, size, gen)
        if i == target:
            chosen.append(obj)
            target = next(wanted, None)
            if target is None:
                break
    rng.shuffle(chosen)
    n = 0
    while True:
        for old in chosen:
            old = orjson.loads(orjson.dumps(old))
            old["metadata"]["managedFields"] = _managed_fields("argocd-controller")
            new = orjson.loads(orjson.dumps(old))
            new["metadata"]["generation"] = 2
            new["spec"]["hostnames"].append(f"extra{n}.{old['metadata']['namespace']}.example.com")
            n += 1
            yield review(new, kind=ROUTE_KIND, resource="httproutes", operation="UPDATE", old=old, rng=rng)


def request_bytes(path: str, document: dict[str, Any], *, timeout: str = "10s") -> bytes:
    """The HTTP/1.1 request kube-apiserver sends for one review (keep-alive)."""
    body = orjson.dumps(document)
    head = (f"POST {path}?timeout={timeout} HTTP/1.1\r\nHost: routewarden.routewarden-system.svc:443\r\n"
            "User-Agent: kube-apiserver-admission\r\nAccept: application/json, */*\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


def write_requests(path: Path, requests: list[bytes]) -> Path:
    """Raw requests for the load generator: each one a 4-byte big-endian length, then its bytes."""
    path.write_bytes(b"".join(len(r).to_bytes(4, "big") + r for r in requests))
    return path

"""Hostname ownership through a real kube-apiserver: ListenerSets, routes without hostnames, paths.

The webhook runs as in ``test_webhook_e2e.py`` (real TLS, the informer watching the
cluster, a ValidatingWebhookConfiguration by ``url`` and ``caBundle`` scoped to the
namespaces of this run) and also watches ListenerSets. Two Gateways, two policies:
``shared`` with ``hostnames.unique: true``, ``paths`` with ``hostnames.unique: path``.
Through the API server: a route taking another team's hostname through that team's
ListenerSet is refused, and so is one on the Gateway itself; a route that lists no
hostnames but takes the site team's listener hostname is refused; on the shared host
of ``paths``, a second team serving ``/store`` beside the site team's ``/login`` is
created, and a third team's ``/login/admin`` (inside ``/login``) is refused. Moving the
site team's listener onto the other team's name is admitted with a warning naming the
site team's route.

Run with: ``KUBECONFIG=~/.kube/config pytest -m e2e tests/e2e``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from e2e_support import (
    GATEWAY_GROUP,
    HOST,
    KINDS,
    Cluster,
    api_client_fixture,  # noqa: F401 - provides the api_client fixture
    denial,
    eventually,
    first_refusal,
    require_crd,
    routewarden,
    served_version,
    validating_webhook,
    webhook_files,
)
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from webhook.state.kinds import KINDS_BY_NAME

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

POLICIES = """\
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {{name: e2e-{run}-host}}
spec:
  match:
    gateways: [{{namespace: {infra}, name: shared}}]
  hostnames: {{unique: true}}
---
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {{name: e2e-{run}-path}}
spec:
  match:
    gateways: [{{namespace: {infra}, name: paths}}]
  hostnames: {{unique: path}}
"""


def gateway(name: str, hostname: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "gatewayClassName": "routewarden-e2e", "allowedListeners": {"namespaces": {"from": "All"}},
        "listeners": [
            {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com",
             "allowedRoutes": {"namespaces": {"from": "All"}}},
            {"name": "shared", "port": 8080, "protocol": "HTTP", "hostname": hostname,
             "allowedRoutes": {"namespaces": {"from": "All"}}},
        ]}}


def route(name: str, parent: dict[str, Any], *, hostnames: list[str] | None = None,
          paths: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    rules = [{"matches": [{"path": {"type": kind, "value": value}}], "backendRefs": [{"name": "web", "port": 8080}]}
             for kind, value in paths] or [{"backendRefs": [{"name": "web", "port": 8080}]}]
    spec: dict[str, Any] = {"parentRefs": [parent], "rules": rules}
    if hostnames is not None:
        spec["hostnames"] = hostnames
    return {"metadata": {"name": name}, "spec": spec}


async def refused(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ApiException) as exc:
        await cluster.create("HTTPRoute", namespace, obj)
    assert exc.value.status == 403, exc.value.body
    return denial(exc.value)


async def test_hijacks_through_listenersets_and_listener_hostnames_are_refused_and_paths_share_a_host(
    api_client: Any, tmp_path: Path
) -> None:
    """Through kube-apiserver: a hijack through a ListenerSet and a route without hostnames taking another team's
    listener hostname are refused (HostnameConflict); with unique: path a path split on one host is created and an
    overlapping path from another team is refused (PathConflict)."""
    await require_crd(api_client, "ListenerSet")
    cluster = Cluster(api_client)
    cluster.versions["ListenerSet"] = served_version(api_client, "ListenerSet")
    admission = k8s.AdmissionregistrationV1Api(api_client)
    run = uuid.uuid4().hex[:8]
    infra, other, team, site, store = (f"rw-e2e-{run}-{n}" for n in ("infra", "other", "team", "site", "store"))
    app, foo, shop = (f"{n}-{run}.example.com" for n in ("app", "foo", "shop"))
    webhook_name = f"routewarden-e2e-ownership-{run}"
    certs = webhook_files(tmp_path, POLICIES.format(run=run, infra=infra))
    created: list[str] = []
    try:
        for ns in (infra, other, team, site, store):
            await cluster.namespace(ns, run)
            created.append(ns)
        await cluster.create("Gateway", infra, gateway("shared", foo))
        await cluster.create("Gateway", infra, gateway("paths", shop))
        await cluster.create("ListenerSet", other, {"metadata": {"name": "ls"}, "spec": {
            "parentRef": {"name": "shared", "namespace": infra},
            "listeners": [{"name": "app", "port": 8443, "protocol": "HTTP", "hostname": app,
                           "allowedRoutes": {"namespaces": {"from": "All"}}}]}})
        through_set = {"group": GATEWAY_GROUP, "kind": "ListenerSet", "name": "ls", "namespace": other}
        on_shared = {"name": "shared", "namespace": infra, "sectionName": "shared"}
        on_paths = {"name": "paths", "namespace": infra, "sectionName": "shared"}
        # The first claimants, applied before routewarden watches: they are in its view once synced.
        await cluster.create("HTTPRoute", other, route("old-via-ls", through_set, hostnames=[app]))
        await cluster.create("HTTPRoute", site, route("login", on_shared, paths=(("PathPrefix", "/login"),)))
        await cluster.create("HTTPRoute", site, route("login", on_paths, paths=(("PathPrefix", "/login"),)) | {
            "metadata": {"name": "shop-login"}})
        kinds = (*KINDS, KINDS_BY_NAME["ListenerSet"])
        async with routewarden(api_client, tmp_path / "policies", certs, kinds=kinds) as (port, state):
            await eventually(lambda: state.route("HTTPRoute", site, "shop-login") is not None
                             and state.listenerset(other, "ls") is not None, "the first claimants in the view")
            await asyncio.to_thread(admission.create_validating_webhook_configuration, validating_webhook(
                webhook_name, run, port, certs, resources=["httproutes", "gateways", "listenersets"]))

            # A hijack through the other team's ListenerSet (the first refusal also proves the API server reaches us).
            exc = await first_refusal(cluster, team, route("via-ls2", through_set, hostnames=[app]))
            body = denial(exc)
            if "failed calling webhook" in body.get("message", ""):
                pytest.skip(f"the API server cannot reach the webhook at {HOST}:{port}: {body['message']}")
            assert exc.status == 403 and body["reason"] == "HostnameConflict", body
            assert f"namespace {other}" in body["message"], body
            # The same name on the Gateway itself: the set's route competes there too.
            body = await refused(cluster, team, route("direct", {"name": "shared", "namespace": infra},
                                                      hostnames=[app]))
            assert body["reason"] == "HostnameConflict" and f"namespace {other}" in body["message"], body

            # No hostnames, Exact /login on the site team's listener: it takes that listener's hostname.
            body = await refused(cluster, store, route("login", on_shared, paths=(("Exact", "/login"),)))
            assert body["reason"] == "HostnameConflict", body
            assert f"hostname {foo} (the listener's" in body["message"] and f"namespace {site}" in body["message"]

            # unique: path on the other Gateway: /store beside /login shares the host...
            await cluster.create("HTTPRoute", store, route("store", on_paths, paths=(("PathPrefix", "/store"),)))
            await eventually(lambda: state.route("HTTPRoute", store, "store") is not None, "the store route in the view")
            # ...and /login/admin from a third team overlaps the site team's /login.
            body = await refused(cluster, team, route("admin", on_paths, paths=(("PathPrefix", "/login/admin"),)))
            assert body["reason"] == "PathConflict", body
            assert f"HTTPRoute {site}/shop-login" in body["message"] and "PathPrefix /login" in body["message"], body
            # /store/cart from a third team overlaps /store, which store claimed first. (Created in the same
            # second, routes are ordered by namespace: every later claimant here sorts after the first.)
            body = await refused(cluster, team, route("cart", on_paths, paths=(("PathPrefix", "/store/cart"),)))
            assert body["reason"] == "PathConflict" and f"namespace {store}" in body["message"], body

            # Moving the site team's listener to the name the other team serves through its ListenerSet
            # gives the site team's route (it lists no hostnames) that name: admitted, with a warning
            # naming the later claimant (dry run: nothing changes).
            moved = gateway("shared", app)["spec"]["listeners"]
            _, _, headers = await asyncio.to_thread(
                cluster.custom.patch_namespaced_custom_object_with_http_info, GATEWAY_GROUP,
                cluster.versions["Gateway"], infra, "gateways", "shared", {"spec": {"listeners": moved}},
                dry_run="All")
            warnings = [h for k, h in headers.items() if k.lower() == "warning"]
            assert any("HostnamesMoved" in w and f"HTTPRoute {site}/login" in w and f"namespace {other}" in w
                       for w in warnings), warnings
    finally:
        with contextlib.suppress(ApiException):
            await asyncio.to_thread(admission.delete_validating_webhook_configuration, webhook_name)
        for ns in created:
            await cluster.delete_namespace(ns)

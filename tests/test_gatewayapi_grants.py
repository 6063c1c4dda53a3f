"""ReferenceGrant matching, and the cross-namespace references routes and Gateways make.

"All cross-namespace references in Gateway API (with the exception of cross-namespace
Gateway-route attachment) require a ReferenceGrant." (ReferenceGrant CRD description)
"""

from __future__ import annotations

from typing import Any

import pytest

from webhook.gatewayapi import (
    GROUP,
    Gateway,
    ObjectRef,
    ReferenceGrant,
    Route,
    reference_permitted,
)


def grant(
    *,
    namespace: str = "backends",
    froms: list[dict[str, str]] | None = None,
    tos: list[dict[str, str]] | None = None,
    version: str = "v1beta1",
    name: str = "g",
) -> ReferenceGrant:
    return ReferenceGrant.from_object(
        {
            "apiVersion": f"{GROUP}/{version}",
            "kind": "ReferenceGrant",
            "metadata": {"namespace": namespace, "name": name},
            "spec": {
                "from": froms if froms is not None else [{"group": GROUP, "kind": "HTTPRoute", "namespace": "prod"}],
                "to": tos if tos is not None else [{"group": "", "kind": "Service"}],
            },
        }
    )


SERVICE = ObjectRef(group="", kind="Service", namespace="backends", name="api")


def permitted(g: ReferenceGrant, *, to: ObjectRef = SERVICE, group: str = GROUP, kind: str = "HTTPRoute", ns: str = "prod") -> bool:
    return g.permits(from_group=group, from_kind=kind, from_namespace=ns, to=to)


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
@pytest.mark.parametrize(
    ("froms", "group", "kind", "ns", "expected"),
    [
        ([{"group": GROUP, "kind": "HTTPRoute", "namespace": "prod"}], GROUP, "HTTPRoute", "prod", True),
        # From is matched exactly on group, kind and namespace.
        ([{"group": GROUP, "kind": "HTTPRoute", "namespace": "prod"}], GROUP, "GRPCRoute", "prod", False),
        ([{"group": GROUP, "kind": "HTTPRoute", "namespace": "prod"}], GROUP, "HTTPRoute", "staging", False),
        ([{"group": GROUP, "kind": "HTTPRoute", "namespace": "prod"}], "example.com", "HTTPRoute", "prod", False),
        # "When empty, the Kubernetes core API group is inferred." A core-group HTTPRoute does not exist.
        ([{"group": "", "kind": "HTTPRoute", "namespace": "prod"}], GROUP, "HTTPRoute", "prod", False),
        # "entries MUST be combined using OR."
        (
            [
                {"group": GROUP, "kind": "GRPCRoute", "namespace": "prod"},
                {"group": GROUP, "kind": "HTTPRoute", "namespace": "staging"},
            ],
            GROUP, "HTTPRoute", "staging", True,
        ),
        ([], GROUP, "HTTPRoute", "prod", False),
    ],
)
def test_a_grant_matches_the_referring_group_kind_and_namespace_exactly(
    version: str, froms: list[dict[str, str]], group: str, kind: str, ns: str, expected: bool
) -> None:
    """"From describes the trusted namespaces and kinds that can reference the resources described in To.\""""
    assert permitted(grant(froms=froms, version=version), group=group, kind=kind, ns=ns) is expected


@pytest.mark.parametrize(
    ("tos", "to", "expected"),
    [
        # Without to.name: "this policy refers to all resources of the specified Group and Kind in the local namespace."
        ([{"group": "", "kind": "Service"}], SERVICE, True),
        ([{"group": "", "kind": "Service"}], ObjectRef("", "Service", "backends", "other"), True),
        ([{"group": "", "kind": "Service", "name": "api"}], SERVICE, True),
        ([{"group": "", "kind": "Service", "name": "web"}], SERVICE, False),
        ([{"group": "", "kind": "Service", "name": ""}], SERVICE, True),
        # Group and kind must both match; Secret and Service are both in the core group "".
        ([{"group": "", "kind": "Secret"}], SERVICE, False),
        ([{"group": "", "kind": "Secret"}], ObjectRef("", "Secret", "backends", "tls"), True),
        ([{"group": "example.com", "kind": "Service"}], SERVICE, False),
        ([{"group": "multicluster.x-k8s.io", "kind": "ServiceImport"}], ObjectRef("multicluster.x-k8s.io", "ServiceImport", "backends", "api"), True),
        # An omitted group means the core group.
        ([{"kind": "Service"}], SERVICE, True),
        ([{"group": "", "kind": "Secret"}, {"group": "", "kind": "Service", "name": "api"}], SERVICE, True),
    ],
)
def test_a_grant_matches_the_target_group_kind_and_optional_name(
    tos: list[dict[str, str]], to: ObjectRef, expected: bool
) -> None:
    """"To describes the resources that may be referenced by the resources described in From.\""""
    assert permitted(grant(tos=tos), to=to) is expected


def test_a_grant_only_counts_in_the_namespace_of_the_referent() -> None:
    """A ReferenceGrant trusts references into *its own* namespace, nowhere else."""
    g = grant(namespace="elsewhere")
    assert not permitted(g)
    assert reference_permitted([g], from_group=GROUP, from_kind="HTTPRoute", from_namespace="prod", to=SERVICE) is None


def test_reference_permitted_returns_the_grant_that_allows_the_reference() -> None:
    """The permitting grant is returned so messages can name it; the first one that permits wins."""
    miss = grant(name="miss", froms=[{"group": GROUP, "kind": "TCPRoute", "namespace": "prod"}])
    hit = grant(name="hit")
    got = reference_permitted([miss, hit], from_group=GROUP, from_kind="HTTPRoute", from_namespace="prod", to=SERVICE)
    assert got is hit
    assert reference_permitted([miss], from_group=GROUP, from_kind="HTTPRoute", from_namespace="prod", to=SERVICE) is None


def test_a_same_namespace_reference_needs_no_grant() -> None:
    """ReferenceGrant governs only references that cross a namespace boundary."""
    to = ObjectRef("", "Service", "prod", "api")
    assert reference_permitted([], from_group=GROUP, from_kind="HTTPRoute", from_namespace="prod", to=to) is True


def test_a_grant_parses_defaults_and_names() -> None:
    """Parsed grants keep (group, kind, namespace) froms and (group, kind, name or None) tos."""
    g = grant(froms=[{"kind": "Gateway", "namespace": "infra", "group": GROUP}], tos=[{"kind": "Secret"}])
    assert g.from_ == ((GROUP, "Gateway", "infra"),)
    assert g.to == (("", "Secret", None),)
    assert g.describe() == "ReferenceGrant backends/g"


# --------------------------------------------------------------------------- route references
def http_route(rules: list[dict[str, Any]], *, kind: str = "HTTPRoute", version: str = "v1") -> Route:
    return Route.from_object(
        {
            "apiVersion": f"{GROUP}/{version}",
            "kind": kind,
            "metadata": {"namespace": "prod", "name": "r"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": rules},
        }
    )


def refs(route: Route) -> list[tuple[str, str, str, str, str]]:
    return [(r.group, r.kind, r.namespace, r.name, r.field) for r in route.backend_refs]


def test_backend_refs_default_to_a_core_service_in_the_route_namespace() -> None:
    """BackendRef group defaults to "" and kind to "Service"; namespace "refers to the local namespace of the Route"."""
    route = http_route([{"backendRefs": [{"name": "api", "port": 80}, {"name": "b", "namespace": "backends", "port": 80}]}])
    assert refs(route) == [
        ("", "Service", "prod", "api", "spec.rules[0].backendRefs[0]"),
        ("", "Service", "backends", "b", "spec.rules[0].backendRefs[1]"),
    ]


def test_explicit_backend_ref_group_and_kind_are_kept() -> None:
    """A ServiceImport or implementation-specific backend is checked under its own group and kind."""
    route = http_route([{"backendRefs": [{"group": "multicluster.x-k8s.io", "kind": "ServiceImport", "name": "s", "namespace": "x"}]}])
    assert refs(route) == [("multicluster.x-k8s.io", "ServiceImport", "x", "s", "spec.rules[0].backendRefs[0]")]


@pytest.mark.parametrize(("kind", "version"), [("HTTPRoute", "v1"), ("HTTPRoute", "v1beta1"), ("GRPCRoute", "v1")])
def test_request_mirror_backends_are_references_too(kind: str, version: str) -> None:
    """requestMirror.backendRef: a cross-namespace mirror "not allowed by a ReferenceGrant" is RefNotPermitted."""
    mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "shadow", "namespace": "mirrors", "port": 80}}}
    route = http_route(
        [
            {
                "filters": [mirror],
                "backendRefs": [{"name": "api", "port": 80, "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {}}, mirror]}],
            }
        ],
        kind=kind,
        version=version,
    )
    assert refs(route) == [
        ("", "Service", "prod", "api", "spec.rules[0].backendRefs[0]"),
        ("", "Service", "mirrors", "shadow", "spec.rules[0].backendRefs[0].filters[1].requestMirror.backendRef"),
        ("", "Service", "mirrors", "shadow", "spec.rules[0].filters[0].requestMirror.backendRef"),
    ]


def test_external_auth_backends_are_references_too() -> None:
    """Experimental externalAuth.backendRef is a BackendObjectReference, so crossing namespaces needs a grant."""
    auth = {"type": "ExternalAuth", "externalAuth": {"protocol": "HTTP", "backendRef": {"name": "authz", "namespace": "auth", "port": 9000}}}
    route = http_route([{"filters": [auth], "backendRefs": [{"name": "api", "port": 80, "filters": [auth]}]}])
    assert refs(route) == [
        ("", "Service", "prod", "api", "spec.rules[0].backendRefs[0]"),
        ("", "Service", "auth", "authz", "spec.rules[0].backendRefs[0].filters[0].externalAuth.backendRef"),
        ("", "Service", "auth", "authz", "spec.rules[0].filters[0].externalAuth.backendRef"),
    ]


def test_a_mirror_filter_without_a_backend_ref_and_other_filters_yield_nothing() -> None:
    """Filters that reference nothing (or only local extensionRefs) add no references."""
    route = http_route(
        [{"filters": [{"type": "RequestMirror", "requestMirror": {}}, {"type": "ExtensionFilter", "extensionRef": {"group": "x.io", "kind": "F", "name": "f"}}]}]
    )
    assert refs(route) == []


# --------------------------------------------------------------------------- gateway references
def test_gateway_certificate_refs_default_to_core_secrets_in_the_gateway_namespace() -> None:
    """certificateRefs: group defaults to "" and kind to "Secret"; cross-namespace refs need a grant from the Gateway."""
    gw = Gateway.from_object(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Gateway",
            "metadata": {"namespace": "gateway-api-example-ns1", "name": "cross-namespace-tls-gateway"},
            "spec": {
                "gatewayClassName": "example",
                "listeners": [
                    {"name": "http", "protocol": "HTTP", "port": 80},
                    {
                        "name": "https",
                        "protocol": "HTTPS",
                        "port": 443,
                        "hostname": "*.example.com",
                        "tls": {
                            "certificateRefs": [
                                {"name": "local"},
                                {"kind": "Secret", "group": "", "name": "wildcard-example-com-cert", "namespace": "gateway-api-example-ns2"},
                            ]
                        },
                    },
                ],
            },
        }
    )
    assert [(r.group, r.kind, r.namespace, r.name, r.field) for r in gw.certificate_refs] == [
        ("", "Secret", "gateway-api-example-ns1", "local", "spec.listeners[1].tls.certificateRefs[0]"),
        ("", "Secret", "gateway-api-example-ns2", "wildcard-example-com-cert", "spec.listeners[1].tls.certificateRefs[1]"),
    ]
    g = grant(
        namespace="gateway-api-example-ns2",
        froms=[{"group": GROUP, "kind": "Gateway", "namespace": "gateway-api-example-ns1"}],
        tos=[{"group": "", "kind": "Secret"}],
    )
    assert permitted(g, to=gw.certificate_refs[1], kind="Gateway", ns="gateway-api-example-ns1")
    assert not permitted(g, to=gw.certificate_refs[1], kind="HTTPRoute", ns="gateway-api-example-ns1")


def test_gateway_tls_client_and_ca_certificate_refs_are_references_with_their_field_paths() -> None:
    """spec.tls.backend.clientCertificateRef (a Secret) and frontend caCertificateRefs (ConfigMaps) may cross namespaces."""
    gw = Gateway.from_object(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Gateway",
            "metadata": {"namespace": "infra", "name": "client-validation-basic"},
            "spec": {
                "gatewayClassName": "acme-lb",
                "tls": {
                    "backend": {"clientCertificateRef": {"name": "client", "namespace": "pki"}},
                    "frontend": {
                        "default": {"validation": {"caCertificateRefs": [{"kind": "ConfigMap", "group": "", "name": "foo-ca"}]}},
                        "perPort": [
                            {"port": 8443, "tls": {"validation": {"caCertificateRefs": [
                                {"kind": "ConfigMap", "group": "", "name": "bar-ca", "namespace": "pki"},
                                {"kind": "Secret", "group": "", "name": "baz-ca"},
                            ]}}},
                        ],
                    },
                },
                "listeners": [{"name": "foo-https", "protocol": "HTTPS", "port": 443, "tls": {"certificateRefs": [{"name": "foo-cert"}]}}],
            },
        }
    )
    assert [(r.group, r.kind, r.namespace, r.name, r.field) for r in gw.certificate_refs] == [
        ("", "Secret", "infra", "foo-cert", "spec.listeners[0].tls.certificateRefs[0]"),
        ("", "Secret", "pki", "client", "spec.tls.backend.clientCertificateRef"),
        ("", "ConfigMap", "infra", "foo-ca", "spec.tls.frontend.default.validation.caCertificateRefs[0]"),
        ("", "ConfigMap", "pki", "bar-ca", "spec.tls.frontend.perPort[0].tls.validation.caCertificateRefs[0]"),
        ("", "Secret", "infra", "baz-ca", "spec.tls.frontend.perPort[0].tls.validation.caCertificateRefs[1]"),
    ]


def test_object_refs_describe_kind_group_and_place() -> None:
    """describe() shows the core group bare and other groups qualified."""
    assert SERVICE.describe() == "Service backends/api"
    assert ObjectRef("x.io", "Backend", "n", "b").describe() == "Backend.x.io n/b"

"""Hostname patterns derived from the namespace: {namespace}, {labels.KEY}, {annotations.KEY}
in hostnames.allowed and gatewayGuardrails.listenerDomains, resolved per request; an
unresolvable one matches nothing and says so, an unknown namespace only warns."""

from __future__ import annotations

import pytest
import yaml

from webhook.engine import decide
from webhook.offline import synthesize_request
from webhook.policy.loader import PolicyLoadError, load_documents
from webhook.policy.placeholders import NamespaceFacts, resolve
from webhook.state.store import ClusterState

APPLES = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "apples", "labels": {"team": "fruit", "bad": "Team_A"},
                       "annotations": {"example.com/zone": "eu-west"}}}


@pytest.mark.parametrize(
    "template, namespace, expected, problem, unknown",
    [
        ("*.{namespace}.example.com", APPLES, "*.apples.example.com", "", False),
        ("{labels.team}.apps.example.com", APPLES, "fruit.apps.example.com", "", False),
        ("{annotations.example.com/zone}.{namespace}.example.com", APPLES, "eu-west.apples.example.com", "", False),
        ("{labels.owner}.apps.example.com", APPLES, None, "namespace apples has no label owner", False),
        ("{labels.bad}.apps.example.com", APPLES, None, "label bad of namespace apples is 'Team_A', not a DNS name",
         False),
        ("{labels.team}.apps.example.com", None, None, "namespace apples is not in the cluster view", True),
        ("*.{namespace}.example.com", None, "*.apples.example.com", "", False),  # the name is always known
        ("shop.example.com", None, "shop.example.com", "", False),
    ],
)
def test_a_placeholder_resolves_from_the_namespace_or_says_why_not(template, namespace, expected, problem,
                                                                   unknown) -> None:
    """Name, label and annotation values fill the pattern; a missing or non-DNS value matches nothing."""
    resolved = resolve(template, NamespaceFacts.of("apples", namespace))
    assert resolved.pattern == expected
    assert problem in resolved.problem and bool(resolved.problem) == bool(problem)
    assert resolved.unknown is unknown


def policy(**spec: object) -> str:
    return yaml.safe_dump({"apiVersion": "routewarden.dev/v1alpha1", "kind": "TenancyPolicy",
                           "metadata": {"name": "per-namespace"}, "spec": spec})


GATEWAY = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
           "metadata": {"name": "shared", "namespace": "infra"},
           "spec": {"gatewayClassName": "cilium", "listeners": [
               {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]}}


def route(namespace: str, hostname: str) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"parentRefs": [{"name": "shared", "namespace": "infra"}], "hostnames": [hostname]}}


ALLOWED = policy(hostnames={"allowed": [{"namespaces": {"names": ["apples"]},
                                         "patterns": ["*.{namespace}.example.com", "{labels.owner}.apps.example.com"]}]})


@pytest.mark.parametrize(
    "hostname, with_namespace, allowed, rule, words",
    [
        ("shop.apples.example.com", True, True, None, ""),
        ("shop.bananas.example.com", True, False, "hostnames/HostnameNotAllowed",
         ("allowed: *.apples.example.com (from *.{namespace}.example.com), {labels.owner}.apps.example.com "
          "(matches nothing: namespace apples has no label owner)")),
        ("shop.apples.example.com", False, True, None, ""),
        ("fruit.apps.example.com", False, True, "attachment/NamespaceNotFound", "Namespace apples is not in the manifests"),
    ],
)
def test_route_hostnames_are_judged_against_the_resolved_patterns(hostname, with_namespace, allowed, rule,
                                                                 words) -> None:
    """A resolved pattern allows; an unresolvable one says why; an unknown namespace only warns."""
    objects = [GATEWAY] + ([APPLES] if with_namespace else [])
    decision = decide(synthesize_request(route("apples", hostname)), load_documents([("p.yaml", ALLOWED)]),
                      ClusterState.from_objects(objects))
    assert decision.allowed is allowed
    assert [v.rule for v in decision.violations] == ([rule] if rule else [])
    assert all(words in v.message for v in decision.violations)
    if rule == "attachment/NamespaceNotFound":
        assert decision.violations[0].mode.value == "warn"


@pytest.mark.parametrize(
    "listener_hostname, labels, allowed, words",
    [
        ("*.infra.example.com", {"zone": "eu"}, True, ""),
        ("shop.eu.example.org", {"zone": "eu"}, True, ""),
        ("shop.other.com", {"zone": "eu"}, False, "outside the allowed domains infra.example.com, eu.example.org"),
        ("shop.other.com", {}, False, "{labels.zone}.example.org (matches nothing: namespace infra has no label zone)"),
    ],
)
def test_listener_domains_take_the_gateway_namespace(listener_hostname, labels, allowed, words) -> None:
    """gatewayGuardrails.listenerDomains placeholders read the Gateway's own namespace."""
    gateway = yaml.safe_load(yaml.safe_dump(GATEWAY))
    gateway["spec"]["listeners"][0]["hostname"] = listener_hostname
    infra = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "infra", "labels": labels}}
    policies = load_documents([("p.yaml", policy(
        gatewayGuardrails={"listenerDomains": ["{namespace}.example.com", "{labels.zone}.example.org"]}))])
    decision = decide(synthesize_request(gateway), policies, ClusterState.from_objects([infra]))
    assert decision.allowed is allowed, decision.message
    assert words in decision.message


@pytest.mark.parametrize(
    "pattern, valid",
    [
        ("*.{namespace}.example.com", True),
        ("{labels.team}.apps.example.com", True),
        ("{annotations.example.com/zone}.example.com", True),
        ("{labels.Team}.example.com", True),  # label keys keep their case
        ("{team}.example.com", False),
        ("{{request.object.metadata.namespace}}.example.com", False),  # Kyverno's syntax is not ours
        ("*.{namespace}", True),
        ("shop.*.example.com", False),
    ],
)
def test_the_schema_accepts_only_known_placeholders(pattern: str, valid: bool) -> None:
    """The JSON Schema (and the loader) validate placeholders, in patterns and listener domains."""
    for spec in ({"hostnames": {"allowed": [{"namespaces": {"names": ["a"]}, "patterns": [pattern]}]}},
                 {"gatewayGuardrails": {"listenerDomains": [pattern]}}):
        try:
            load_documents([("p.yaml", policy(**spec))])
        except PolicyLoadError as exc:
            assert not valid, str(exc)
            assert "is not a hostname or *.wildcard" in str(exc)
        else:
            assert valid


@pytest.mark.parametrize("hostname, allowed", [("shop.apples.example.com", True), ("shop.bananas.example.com", False)])
def test_listenerset_listener_hostnames_use_the_sets_namespace(hostname: str, allowed: bool) -> None:
    """A ListenerSet's listener hostname is a claim of its namespace, judged by the resolved pattern."""
    gateway = yaml.safe_load(yaml.safe_dump(GATEWAY))
    gateway["spec"]["allowedListeners"] = {"namespaces": {"from": "All"}}
    listener_set = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet",
                    "metadata": {"name": "shop", "namespace": "apples"},
                    "spec": {"parentRef": {"name": "shared", "namespace": "infra"},
                             "listeners": [{"name": "shop", "port": 80, "protocol": "HTTP", "hostname": hostname}]}}
    decision = decide(synthesize_request(listener_set), load_documents([("p.yaml", ALLOWED)]),
                      ClusterState.from_objects([gateway, APPLES]))
    assert decision.allowed is allowed, decision.message
    if not allowed:
        assert "*.apples.example.com (from *.{namespace}.example.com)" in decision.message

"""ServicePolicy documents: loading, merge order, profiles, hostname sources and conflicts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_mutation_helpers import REPO, gateway, mutate, policies, review, state_of

from webhook.mutation.profiles import PROFILES
from webhook.mutation.service import HOSTNAME_RECORD
from webhook.policy.loader import PolicyLoadError, load_paths

HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"


def policy(name: str, spec: str) -> str:
    return f"apiVersion: routewarden.dev/v1alpha1\nkind: ServicePolicy\nmetadata: {{name: {name}}}\nspec:\n{spec}\n"


def cilium_service(name: str = "cilium-gateway-echo", namespace: str = "echo", gateway_name: str = "echo") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"gateway.networking.k8s.io/gateway-name": gateway_name,
                                "io.cilium.gateway/owning-gateway": gateway_name}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "protocol": "TCP", "targetPort": 443}],
                 "externalTrafficPolicy": "Cluster"},
    }


def annotations_after(policy_text: str, *objects: dict[str, Any], service: dict[str, Any] | None = None) -> dict[str, str]:
    """The Service's annotations once mutated, without routewarden's record of the hostname it set
    (test_mutation_update_rules.py covers that)."""
    state = state_of(*objects) if objects else state_of(gateway("echo", "echo", class_name="cilium", hostnames=["echo.example.com"]))
    _, stored = mutate(review(service or cilium_service()), policies(policy_text), state)
    annotations = dict(stored["metadata"].get("annotations", {}))
    annotations.pop(HOSTNAME_RECORD, None)
    return annotations


def test_the_shipped_policies_and_the_examples_load_together_with_the_tenancy_policies() -> None:
    """policies/ (ServicePolicy and TenancyPolicy files) loads as one set; examples/ is not part of it."""
    loaded = load_paths([REPO / "policies"])
    assert "cilium-eks" in {p.name for p in loaded.services}
    assert "echo-eks" not in {p.name for p in loaded.services}
    assert {p.name for p in load_paths([REPO / "policies" / "examples"]).services} >= {"echo-eks"}


def test_the_schema_lists_exactly_the_known_profiles() -> None:
    """The profile names the schema accepts are the ones the code knows."""
    schema = json.loads((REPO / "webhook" / "policy" / "schemas" / "servicepolicy.json").read_text())
    assert set(schema["$defs"]["profileName"]["enum"]) == set(PROFILES)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("  service: {profiles: [metallb-pool]}", "parameters.pool: profile metallb-pool needs parameter(s) pool"),
        ("  service: {profiles: [{name: metallb-pool}]}", "at spec.service.profiles[0]: 'parameters' is a required property"),
        ("  service: {profiles: [{name: gke-internal, parameters: {pool: x}}]}",
         "at spec.service.profiles[0].parameters: Additional properties are not allowed ('pool' was unexpected)"),
        ("  service: {profiles: [aws-alb]}", "'aws-alb' is not one of"),
        ("  service: {externalDNS: {sources: [template]}}", "template is empty"),
        ("  service: {externalDNS: {sources: [template], template: '{gw}.example.com'}}", "uses gw"),
        ("  service: {loadBalancerClass: x, extra: 1}", "Additional properties"),
        ("  match: {gatewayClassNames: [cilium]}", "is not valid"),
        ("  gateway: {certManager: {issuer: a, clusterIssuer: b}}", "too many"),
    ],
)
def test_a_wrong_policy_is_refused_with_the_reason(spec: str, message: str) -> None:
    """Schema and semantic errors name the problem; the set is refused as a whole."""
    with pytest.raises(PolicyLoadError) as caught:
        policies(policy("broken", spec))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("profile", "annotations", "load_balancer_class"),
    [
        ("aws-nlb-internet-facing", {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"}, "service.k8s.aws/nlb"),
        ("aws-nlb-internal", {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}, "service.k8s.aws/nlb"),
        ("gke-internal", {"networking.gke.io/load-balancer-type": "Internal"}, None),
        ("gke-external", {"cloud.google.com/l4-rbs": "enabled"}, None),
        ("azure-internal", {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}, None),
        ("{name: metallb-pool, parameters: {pool: blue}}", {"metallb.io/address-pool": "blue"}, None),
    ],
)
def test_a_profile_gives_its_cloud_annotations(profile: str, annotations: dict[str, str], load_balancer_class: str | None) -> None:
    """Profiles spare users the annotation names; a profile with a parameter fills it in."""
    state = state_of(gateway("echo", "echo", class_name="cilium", hostnames=["echo.example.com"]))
    _, stored = mutate(review(cilium_service()), policies(policy("p", f"  service: {{profiles: [{profile}]}}")), state)
    assert stored["metadata"]["annotations"] == annotations
    assert stored["spec"].get("loadBalancerClass") == load_balancer_class


def test_later_policies_win_by_priority_then_by_name() -> None:
    """Policies apply lowest priority first, ties by name; the last one setting a key wins."""
    text = "---\n".join([
        policy("b-late", "  priority: 0\n  service: {annotations: {k: b, only-b: b}}"),
        policy("a-early", "  priority: 0\n  service: {annotations: {k: a, only-a: a}}"),
        policy("z-first", "  priority: -5\n  service: {annotations: {k: z}, externalTrafficPolicy: Local}"),
        policy("other-class", "  match: {gatewayClassNames: [istio]}\n  service: {annotations: {k: istio}}"),
    ])
    assert annotations_after(text) == {"k": "b", "only-a": "a", "only-b": "b"}


def test_match_criteria_are_all_required() -> None:
    """gatewayClassNames AND namespaces AND gatewayLabels: a Gateway failing one is not matched."""
    text = policy("narrow", "  match:\n    gatewayClassNames: [cilium]\n    namespaces: {names: [echo]}\n"
                            "    gatewayLabels: {matchLabels: {exposure: public}}\n  service: {annotations: {k: v}}")
    plain = gateway("echo", "echo", class_name="cilium", hostnames=["echo.example.com"])
    public = gateway("echo", "echo", class_name="cilium", hostnames=["echo.example.com"], labels={"exposure": "public"})
    assert annotations_after(text, plain) == {}
    assert annotations_after(text, public) == {"k": "v"}


def test_policy_annotations_override_propagated_infrastructure_which_overrides_profiles() -> None:
    """Within a policy: profile < Gateway spec.infrastructure < service.annotations; labels are propagated too."""
    gw = gateway("echo", "echo", class_name="cilium", hostnames=["echo.example.com"])
    gw["spec"]["infrastructure"] = {
        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal", "team": "echo", "k": "infra"},
        "labels": {"cost-center": "42"},
    }
    text = policy("p", "  service:\n    profiles: [aws-nlb-internet-facing]\n    propagateInfrastructure: true\n"
                       "    annotations: {k: policy}")
    state = state_of(gw)
    _, stored = mutate(review(cilium_service()), policies(text), state)
    assert stored["metadata"]["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal", "team": "echo", "k": "policy"
    }
    assert stored["metadata"]["labels"]["cost-center"] == "42"


@pytest.mark.parametrize(("conflicts", "expected"), [("overwrite", "policy"), ("keep", "someone-else")])
def test_conflicts_decide_who_wins_an_annotation_set_by_someone_else(conflicts: str, expected: str) -> None:
    """conflicts: keep leaves another writer's value (with a warning); overwrite replaces it."""
    service = cilium_service()
    service["metadata"]["annotations"] = {"k": "someone-else"}
    state = state_of(gateway("echo", "echo", class_name="cilium", hostnames=["echo.example.com"]))
    decision, stored = mutate(review(service), policies(policy("p", f"  service: {{annotations: {{k: policy}}, conflicts: {conflicts}}}")), state)
    assert stored["metadata"]["annotations"]["k"] == expected
    assert bool(decision.warnings) == (conflicts == "keep")


def test_external_traffic_policy_is_set_over_the_default() -> None:
    """The built-in default Cluster becomes the policy's Local."""
    state = state_of(gateway("echo", "echo", class_name="cilium", hostnames=["echo.example.com"]))
    _, stored = mutate(review(cilium_service()), policies(policy("p", "  service: {externalTrafficPolicy: Local}")), state)
    assert stored["spec"]["externalTrafficPolicy"] == "Local"


@pytest.mark.parametrize(
    ("external_dns", "expected"),
    [
        ("{}", {HOSTNAME: "*.example.com,echo.example.com"}),
        ("{wildcards: drop}", {HOSTNAME: "echo.example.com"}),
        ("{prefix: external-dns.kubernetes.io/, ttl: 60}",
         {"external-dns.kubernetes.io/hostname": "*.example.com,echo.example.com", "external-dns.kubernetes.io/ttl": "60"}),
        ("{sources: [template], template: '{gateway}.{namespace}.{class}.example.com'}", {HOSTNAME: "echo.echo.cilium.example.com"}),
        ("{sources: [listeners, template], template: 'lb-{gateway}.example.com'}",
         {HOSTNAME: "*.example.com,echo.example.com,lb-echo.example.com"}),
    ],
)
def test_the_external_dns_hostname_comes_from_the_chosen_sources(external_dns: str, expected: dict[str, str]) -> None:
    """Listener names (wildcards kept or dropped), a template, or both; the prefix is configurable."""
    gw = gateway("echo", "echo", class_name="cilium", hostnames=["echo.example.com", "*.example.com", "echo.example.com"])
    assert annotations_after(policy("p", f"  service: {{externalDNS: {external_dns}}}"), gw) == expected


def route(name: str, namespace: str, hostnames: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"parentRefs": [{"name": "echo", "namespace": "echo"}], "hostnames": hostnames},
    }


def test_route_hostnames_count_only_where_the_gateway_accepts_the_route() -> None:
    """Hostnames of attached routes, intersected with the listener; a route its listener refuses adds nothing."""
    gw = gateway("echo", "echo", class_name="cilium", hostnames=["*.example.com"])
    objects = [
        gw,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "echo"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
        route("api", "echo", ["api.example.com", "api.elsewhere.org"]),
        route("www", "echo", ["www.example.com"]),
        route("no-hostnames", "echo", []),  # takes the listener's *.example.com
        route("outsider", "other", ["outsider.example.com"]),  # allowedRoutes: Same
    ]
    text = policy("p", "  service: {externalDNS: {sources: [routes]}}")
    assert annotations_after(text, *objects) == {HOSTNAME: "*.example.com,api.example.com,www.example.com"}


def test_no_hostname_to_publish_leaves_the_annotation_and_warns() -> None:
    """A Gateway without hostnames gives nothing to publish: the existing annotation is not removed."""
    service = cilium_service()
    service["metadata"]["annotations"] = {HOSTNAME: "typed.example.com"}
    state = state_of(gateway("echo", "echo", class_name="cilium", hostnames=[None]))
    decision, stored = mutate(review(service), policies(policy("p", "  service: {externalDNS: {}}")), state)
    assert stored["metadata"]["annotations"] == {HOSTNAME: "typed.example.com"}
    assert "no hostname to publish" in decision.warnings[0]

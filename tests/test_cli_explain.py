"""``routewarden explain`` as a subprocess, and :mod:`webhook.explain` directly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from webhook.explain import RouteReport, explain
from webhook.policy.loader import load_paths
from webhook.reconcile.report import explain_services, render_services
from webhook.state.manifests import load_manifests
from webhook.state.store import ClusterState

REPO = Path(__file__).resolve().parents[1]
CLI = Path("tests/cli")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "webhook", "explain", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def routes(*paths: str) -> dict[str, dict]:
    proc = run(*paths, "-o", "json")
    assert proc.returncode in (0, 1), proc.stderr
    document = json.loads(proc.stdout)
    assert document["schemaVersion"] == 1
    return {f"{r['namespace']}/{r['name']}": r for r in document["routes"]}


def test_an_attached_route_names_its_listener_and_hostnames() -> None:
    """A route that attaches: exit 0, the listener that takes it, the hostnames it serves."""
    proc = run(str(CLI / "repo"), "-o", "json")
    assert proc.returncode == 0, proc.stdout
    [web] = json.loads(proc.stdout)["routes"]
    assert web["attached"] and web["refsResolved"]
    [parent] = web["parents"]
    assert parent["reason"] == "Accepted" and parent["hostnames"] == ["web.apples.example.com"]
    taken = [lr["name"] for lr in parent["listeners"] if lr["attaches"]]
    skipped = [lr for lr in parent["listeners"] if not lr["selected"]]
    assert taken == ["http"]
    assert [lr["name"] for lr in skipped] == ["internal"] and "sectionName" in skipped[0]["why_not"][0]


@pytest.mark.parametrize(
    "route, reason, why",
    [
        ("cherries/outsider", "NotAllowedByListeners", "namespace cherries not admitted"),
        ("apples/typo", "NoMatchingParent", "sectionName is 'htpp'"),
        ("apples/elsewhere", "NoMatchingListenerHostname", "apples.example.org"),
    ],
)
def test_a_detached_route_says_which_listener_refuses_it_and_why(route: str, reason: str, why: str) -> None:
    """Each way of not attaching gives the Gateway API reason and a listener-level cause."""
    report = routes(str(CLI / "repo"), str(CLI / "explain"))[route]
    assert not report["attached"]
    [parent] = report["parents"]
    assert parent["reason"] == reason and parent["accepted"] is False
    causes = [w for lr in parent["listeners"] for w in lr["why_not"]]
    assert any(why in c for c in causes), causes


def test_backend_refs_name_the_grant_that_permits_them_or_its_absence() -> None:
    """A cross-namespace backendRef names its ReferenceGrant, or says none permits it."""
    granted = routes(str(CLI / "repo"), str(CLI / "commit"))["apples/shop"]
    [backend] = granted["backends"]
    assert backend["cross_namespace"] and backend["permitted"]
    assert backend["grant"] == "ReferenceGrant bananas/apples-to-checkout"
    missing = routes(str(CLI / "repo"), str(CLI / "commit" / "route.yaml"))["apples/shop"]
    assert not missing["backends"][0]["permitted"] and missing["backends"][0]["grant"] is None
    assert not missing["refsResolved"]


def test_text_output_answers_why_a_route_is_not_attached() -> None:
    """The text report says NOT attached, the reason, and the refusing listener's rule."""
    proc = run(str(CLI / "repo"), str(CLI / "explain"))
    assert proc.returncode == 1
    assert "HTTPRoute cherries/outsider (tests/cli/explain/routes.yaml:2): NOT attached" in proc.stdout
    assert "NotAllowedByListeners" in proc.stdout
    assert "admits namespaces labelled team (from: Selector)" in proc.stdout
    assert "NOT PERMITTED: RefNotPermitted" in proc.stdout


def test_explain_reads_stdin_and_reports_malformed_yaml_with_its_position() -> None:
    """``-`` reads standard input; a YAML error exits 2 with line and column."""
    text = (REPO / CLI / "repo/platform/gateway.yaml").read_text() + "---\n" + (
        REPO / CLI / "repo/teams/apples/route.yaml").read_text()
    assert run("-", stdin=text).returncode == 1  # namespaces not declared: the selector cannot be decided
    assert run(str(CLI / "repo/platform"), "-", stdin=text).returncode == 0
    bad = run(str(CLI / "malformed"))
    assert bad.returncode == 2 and "bad.yaml:8:13" in bad.stderr


def test_an_undeclared_namespace_leaves_the_answer_open_rather_than_guessing() -> None:
    """Without the Namespace manifest a label selector cannot be evaluated: accepted is unknown."""
    found = load_manifests([REPO / CLI / "repo/platform/gateway.yaml", REPO / CLI / "repo/teams/apples"])
    state = ClusterState.from_objects(m.obj for m in found)
    [report] = explain([(m.obj, m.path, m.line) for m in found], state)
    assert report.parents[0].accepted is None
    assert report.parents[0].listeners[0].namespace_allowed is None
    assert "not declared" in report.parents[0].message


def test_a_route_on_a_listenerset_its_gateway_refuses_is_not_attached() -> None:
    """A ListenerSet the Gateway's allowedListeners refuses serves no route, as check decides."""
    scenario = REPO / "tests/scenarios"
    found = load_manifests([scenario / "_shared/cluster.yaml", scenario / "listenersets"])
    state = ClusterState.from_objects(m.obj for m in found)
    reports = {f"{r.namespace}/{r.name}": r for r in explain([(m.obj, m.path, m.line) for m in found], state)}
    refused, accepted = reports["apples/extra"], reports["apples/shop"]
    assert not refused.attached and accepted.attached
    assert refused.parents[0].reason == "NotAllowedByListeners" and refused.parents[0].accepted is False
    assert "not accepted by Gateway infra/closed" in refused.parents[0].message


MESH_ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh, namespace: apples}
spec:
  parentRefs: [{group: "", kind: Service, name: apples-echo}]
  rules: [{backendRefs: [{name: apples-echo, port: 8080}]}]
"""


def test_a_mesh_route_is_not_counted_as_detached() -> None:
    """A Service parent (GAMMA) is not predicted: explain says so and does not fail the run."""
    proc = run("-", "-o", "json", stdin=MESH_ROUTE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [report] = json.loads(proc.stdout)["routes"]
    assert report["parents"][0]["reason"] == "NotAGateway" and report["attached"] is True


def test_explain_on_a_service_shows_what_the_reconciler_would_apply() -> None:
    """The generated Service: the route's hostname to set, the value routewarden owns and no longer computes to
    remove, the apply configuration itself; a Service no controller generated: not reconciled. Exit 0."""
    proc = run(str(CLI / "services" / "cluster.yaml"), "--policies", str(CLI / "services" / "policy.yaml"), "-o", "json")
    assert proc.returncode == 0, proc.stderr
    reports = {f"{s['namespace']}/{s['name']}": s for s in json.loads(proc.stdout)["services"]}
    generated = reports["infra/cilium-gateway-shared"]
    assert generated["reconciled"] and generated["gateway"] == "infra/shared" and generated["ownership_known"]
    hostnames = "*.example.com,shop.example.com"
    assert [(c["action"], c["path"], c["value"]) for c in generated["changes"]] == [
        ("set", "metadata.annotations[external-dns.alpha.kubernetes.io/hostname]", hostnames),
        ("set", "metadata.annotations[routewarden.dev/external-dns-hostname]",
         f"external-dns.alpha.kubernetes.io/hostname={hostnames}"),
        ("remove", "metadata.annotations[example.com/retired]", None),
    ]
    assert generated["apply"]["metadata"]["annotations"] == {
        "external-dns.alpha.kubernetes.io/hostname": hostnames,
        "routewarden.dev/external-dns-hostname": f"external-dns.alpha.kubernetes.io/hostname={hostnames}",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    }
    assert generated["fieldManager"] == "routewarden" and generated["force"] is False
    assert not reports["apples/web"]["reconciled"] and reports["apples/web"]["apply"] is None


def test_the_text_report_lists_each_change_and_why_a_service_is_not_reconciled() -> None:
    """The text form: one line per field to set, adopt or remove; the reason for a Service left alone."""
    manifests = load_manifests([REPO / CLI / "services" / "cluster.yaml"])
    triples = [(m.obj, m.path, m.line) for m in manifests]
    policies = load_paths([REPO / CLI / "services" / "policy.yaml"])
    text = render_services(explain_services(triples, ClusterState.from_objects(m.obj for m in manifests), policies))
    assert "the reconciler applies (server-side apply, field manager routewarden, force: no; policy dns):" in text
    assert ('set    metadata.annotations[external-dns.alpha.kubernetes.io/hostname] = '
            '"*.example.com,shop.example.com" (now "*.example.com")') in text
    assert 'remove metadata.annotations[example.com/retired] (now "yes"' in text
    assert "Service apples/web" in text and "not a generated Service" in text


def test_explain_on_a_service_without_policies_says_so(tmp_path: Path) -> None:
    """A Service needs ServicePolicies: a missing policy directory is a usage error (exit 2), routes alone are not."""
    proc = subprocess.run([sys.executable, "-m", "webhook", "explain", str(REPO / CLI / "services" / "cluster.yaml")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and "no policies" in proc.stderr


def scenario_reports(*paths: str) -> dict[str, RouteReport]:
    found = load_manifests([REPO / "tests/scenarios" / p for p in paths])
    state = ClusterState.from_objects(m.obj for m in found)
    return {f"{r.namespace}/{r.name}": r for r in explain([(m.obj, m.path, m.line) for m in found], state)}


def test_a_route_on_an_implementation_specific_listener_is_unknown_as_check_warns() -> None:
    """A waypoint's HBONE listener: explain says the implementation decides, check only warns."""
    reports = scenario_reports("_shared/cluster.yaml", "mesh/cluster.yaml", "mesh/resources.yaml")
    [parent] = reports["bookinfo/reviews"].parents
    assert parent.accepted is None and "implementation" in parent.message
    [listener] = parent.listeners
    assert listener.kind_allowed is None and any("implementation-specific" in w for w in listener.why_not)
    assert reports["apples/intruder"].parents[0].accepted is False


def test_a_route_refused_by_one_parent_and_accepted_by_another_is_partially_attached() -> None:
    """The controller accepts it where it attaches: explain says so, parent by parent."""
    reports = scenario_reports("_shared/cluster.yaml", "listenersets/cluster.yaml", "partial-attachment")
    report = reports["apples/two-listeners"]
    assert [p.accepted for p in report.parents] == [True, False]
    assert report.partially_attached and not report.attached
    assert not reports["cherries/nowhere"].partially_attached

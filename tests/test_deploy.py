"""The deployment manifests, Dockerfile and GitOps examples, checked as a cluster would see them.

Each overlay is rendered with the real kustomize (``kustomize build`` or the copy built
into ``kubectl``), then every object is validated against the OpenAPI schema of the
newest Kubernetes release that ``kubernetes-validate`` ships, strictly (unknown fields
fail). Objects of CRD-backed kinds (cert-manager, Flux, Argo CD, Prometheus Operator)
are checked for their envelope. The safety properties of the webhook configurations are
asserted one by one, so a later edit cannot drop one silently; the CEL matchConditions
are evaluated on real AdmissionReview requests captured from kube-apiserver.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cel
import kubernetes_validate
import pytest
import yaml

from webhook.engine import VALIDATED_OPERATIONS
from webhook.mutation import implementations
from webhook.policy.loader import policy_files
from webhook.state.kinds import GATEWAY_GROUP, WATCHED_KINDS

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
REVIEWS = REPO.parent / "shared" / "admission-reviews"
OVERLAYS = ("base", "overlays/cert-manager", "overlays/self-managed")
DEPLOYABLE = ("overlays/cert-manager", "overlays/self-managed")
KUBERNETES = kubernetes_validate.latest_version()
NAMESPACE = "routewarden"
# Kinds served by CRDs, which kubernetes-validate has no schema for.
CRD_GROUPS = {
    "cert-manager.io": {"Issuer", "ClusterIssuer", "Certificate"},
    "source.toolkit.fluxcd.io": {"GitRepository"},
    "kustomize.toolkit.fluxcd.io": {"Kustomization"},
    "argoproj.io": {"Application"},
    "monitoring.coreos.com": {"PrometheusRule", "ServiceMonitor", "PodMonitor"},
}
NEVER_EXCLUDED_FROM_SAFETY = ("kube-system", "kube-node-lease", "kube-public", NAMESPACE)
CHECKOV = "checkov>=3.2,<4"
TOOLS_VENV = REPO / ".venv-tools"

Obj = dict[str, Any]


# --------------------------------------------------------------------------- rendering
def kustomize_command() -> list[str] | None:
    """The real kustomize: standalone if installed, else the one built into kubectl."""
    if path := shutil.which("kustomize"):
        return [path, "build"]
    if path := shutil.which("kubectl"):
        return [path, "kustomize"]
    return None


pytestmark = pytest.mark.skipif(kustomize_command() is None, reason="needs kustomize or kubectl on PATH")


def build(directory: Path) -> str:
    """``kustomize build`` of a directory, with the default (root-only) load restrictor."""
    command = kustomize_command()
    assert command is not None
    done = subprocess.run([*command, str(directory)], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"kustomize build {directory} failed:\n{done.stderr}"
    return done.stdout


_RENDERED: dict[str, list[Obj]] = {}


def render(overlay: str) -> list[Obj]:
    """The objects an overlay renders to (cached; callers get a deep copy)."""
    if overlay not in _RENDERED:
        _RENDERED[overlay] = [d for d in yaml.safe_load_all(build(DEPLOY / overlay)) if d]
    return copy.deepcopy(_RENDERED[overlay])


def load_yaml(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def webhooks(objects: list[Obj]) -> Iterator[tuple[str, Obj]]:
    for o in objects:
        if o["kind"] in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            for hook in o["webhooks"]:
                yield o["kind"], hook


def container(objects: list[Obj]) -> Obj:
    return one(objects, "Deployment", "routewarden")["spec"]["template"]["spec"]["containers"][0]


def arg_value(args: list[str], flag: str) -> str | None:
    for arg in args:
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    return None


# --------------------------------------------------------------------------- schemas
def check_envelope(obj: Obj) -> None:
    """What a CRD-backed object must have for any apiserver to accept it."""
    group, _, version = obj["apiVersion"].rpartition("/")
    assert group in CRD_GROUPS, f"no schema for {obj['apiVersion']} {obj['kind']}"
    assert obj["kind"] in CRD_GROUPS[group], f"{obj['kind']} is not a kind of {group}"
    assert re.fullmatch(r"v\d+((alpha|beta)\d+)?", version), obj["apiVersion"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", obj["metadata"]["name"]), obj["metadata"]
    assert isinstance(obj.get("spec"), dict), f"{obj['kind']} {obj['metadata']['name']} has no spec"


def validate(obj: Obj) -> None:
    try:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        check_envelope(obj)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_is_valid_for_the_newest_kubernetes(overlay: str) -> None:
    """Every object an overlay renders passes the strict OpenAPI schema (or the CRD envelope check)."""
    objects = render(overlay)
    assert objects
    for obj in objects:
        validate(obj)


def test_the_schema_check_rejects_an_unknown_field() -> None:
    """The strict validation used above does fail on a misspelt field, so its passes mean something."""
    deployment = one(render("base"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespaced_objects_land_in_the_routewarden_namespace(overlay: str) -> None:
    """Every namespaced object is in routewarden's namespace, so the webhook exclusions cover them (except the
    reconciler's RoleBindings, which belong in the namespaces of the Services it applies)."""
    for obj in render(overlay):
        if obj["kind"] == "RoleBinding" and obj["roleRef"]["name"] == "routewarden-reconciler":
            continue
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding",
                               "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            assert obj["metadata"].get("namespace") == NAMESPACE, (obj["kind"], obj["metadata"]["name"])


@pytest.mark.parametrize("path", sorted((DEPLOY / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_gitops_examples_are_well_formed_and_point_at_an_overlay(path: Path) -> None:
    """The Flux and Argo CD examples are valid objects whose path is an overlay that builds."""
    objects = load_yaml(path)
    for obj in objects:
        validate(obj)
    paths = [o["spec"]["path"] for o in objects if o["kind"] == "Kustomization"]
    paths += [o["spec"]["source"]["path"] for o in objects if o["kind"] == "Application"]
    assert len(paths) == 1
    assert paths[0].removeprefix("./") in {f"deploy/{overlay}" for overlay in DEPLOYABLE}
    build(REPO / paths[0])


def test_argocd_ignores_the_cabundle_written_in_the_cluster() -> None:
    """Argo CD must not report (or revert) the caBundle that cainjector or routewarden writes."""
    app = one(load_yaml(DEPLOY / "examples" / "argocd-application.yaml"), "Application")
    ignored = {(d["kind"], tuple(d["jqPathExpressions"])) for d in app["spec"]["ignoreDifferences"]}
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        assert (kind, (".webhooks[]?.clientConfig.caBundle",)) in ignored
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_webhook_configurations_are_applied_after_the_deployment_in_argocd(overlay: str) -> None:
    """Sync waves: the webhook configurations come last, once something can answer them."""
    objects = render(overlay)
    wave = {(o["kind"], o["metadata"]["name"]):
            int(o["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0")) for o in objects}
    hooks = [w for (kind, _), w in wave.items() if kind.endswith("WebhookConfiguration")]
    others = [w for (kind, _), w in wave.items() if not kind.endswith("WebhookConfiguration")]
    assert len(hooks) == 2 and min(hooks) > max(others)


def test_observability_manifests_render_if_present() -> None:
    """deploy/observability (alerts, dashboard) builds and its objects are well formed."""
    if not (DEPLOY / "observability" / "kustomization.yaml").exists():
        pytest.skip("no deploy/observability yet")
    for obj in yaml.safe_load_all(build(DEPLOY / "observability")):
        if obj:
            validate(obj)


# --------------------------------------------------------------------------- webhook safety
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_webhook_excludes_the_control_plane_and_routewarden_namespaces(overlay: str) -> None:
    """kube-system, kube-node-lease, kube-public and routewarden itself never go through a webhook."""
    for _, hook in webhooks(render(overlay)):
        expressions = hook["namespaceSelector"]["matchExpressions"]
        by_name = [e for e in expressions if e["key"] == "kubernetes.io/metadata.name"]
        assert by_name and by_name[0]["operator"] == "NotIn", hook["name"]
        assert set(NEVER_EXCLUDED_FROM_SAFETY) <= set(by_name[0]["values"]), hook["name"]
        opt_out = [e for e in expressions if e["key"] == "routewarden.dev/ignore"]
        assert opt_out == [{"key": "routewarden.dev/ignore", "operator": "NotIn", "values": ["true"]}]
        assert "matchLabels" not in hook["namespaceSelector"], "matchLabels would narrow to labelled namespaces"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_webhook_has_no_side_effects_a_short_timeout_and_speaks_v1(overlay: str) -> None:
    """sideEffects None (dry runs work), timeout at most 5 s, AdmissionReview v1 only."""
    found = list(webhooks(render(overlay)))
    assert len(found) == 4
    for _, hook in found:
        assert hook["sideEffects"] == "None"
        assert 1 <= hook["timeoutSeconds"] <= 5
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["matchPolicy"] == "Equivalent"


@pytest.mark.parametrize(
    ("name", "failure_policy", "reinvocation"),
    [
        ("validate.routewarden.dev", "Fail", None),
        ("services.validate.routewarden.dev", "Ignore", None),
        ("services.mutate.routewarden.dev", "Ignore", "IfNeeded"),
        ("gateways.mutate.routewarden.dev", "Ignore", "Never"),
    ],
)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_webhook_has_its_chosen_failure_policy(
    overlay: str, name: str, failure_policy: str, reinvocation: str | None
) -> None:
    """Gateway API validation fails closed; Service validation and mutations fail open (gateway controllers
    write Services to provision traffic); the Service mutation is reinvoked if needed."""
    hook = next(h for _, h in webhooks(render(overlay)) if h["name"] == name)
    assert hook["failurePolicy"] == failure_policy
    assert hook.get("reinvocationPolicy") == reinvocation


SERVICE_WEBHOOKS = ("services.mutate.routewarden.dev", "services.validate.routewarden.dev")


def match_conditions_of(overlay: str, name: str) -> list[Obj]:
    return next(h for _, h in webhooks(render(overlay)) if h["name"] == name)["matchConditions"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_webhook_rules_are_narrow(overlay: str) -> None:
    """No wildcard, no subresource, no cluster scope, and no core kind but Services, only in the two Service
    webhooks, which fail open and are filtered by matchConditions."""
    for _, hook in webhooks(render(overlay)):
        for rule in hook["rules"]:
            for field in ("apiGroups", "apiVersions", "resources", "operations"):
                assert "*" not in rule[field], (hook["name"], field)
            assert not any("/" in r for r in rule["resources"]), "subresources (status) are not ours"
            assert rule["scope"] == "Namespaced"
            assert "CONNECT" not in rule["operations"]
            if rule["apiGroups"] == [""]:
                assert hook["name"] in SERVICE_WEBHOOKS and hook["failurePolicy"] == "Ignore"
                assert hook["matchConditions"][:2] == match_conditions_of(overlay, "services.mutate.routewarden.dev")
                assert rule["resources"] == ["services"] and rule["apiVersions"] == ["v1"]
                assert set(rule["operations"]) == {"CREATE", "UPDATE"}
            else:
                assert rule["apiGroups"] == [GATEWAY_GROUP]


def validated_operations(hook: Obj) -> dict[str, set[str]]:
    """resource -> the operations the webhook's rules send for it."""
    out: dict[str, set[str]] = {}
    for rule in hook["rules"]:
        for resource in rule["resources"]:
            out.setdefault(resource, set()).update(rule["operations"])
    return out


def test_the_validating_webhook_covers_every_gateway_api_kind_and_version_the_view_reads() -> None:
    """Rules and the cluster view agree: every namespaced Gateway API kind, in every known version."""
    hook = next(h for _, h in webhooks(render("base")) if h["name"] == "validate.routewarden.dev")
    kinds = [k for k in WATCHED_KINDS if k.group == GATEWAY_GROUP and k.namespaced]
    assert set(validated_operations(hook)) == {k.plural for k in kinds}
    for rule in hook["rules"]:
        assert {v for k in kinds for v in k.versions} <= set(rule["apiVersions"])


def test_the_validating_webhook_sends_exactly_the_operations_the_rules_read() -> None:
    """The configuration and the engine's dispatch agree kind by kind: an operation no rule
    reads (a route DELETE) never waits for the fail-closed webhook, and every one a rule
    reads (a Gateway or ReferenceGrant DELETE: blast radius) is sent."""
    hook = next(h for k, h in webhooks(render("base")) if k == "ValidatingWebhookConfiguration")
    plurals = {k.plural: k.kind for k in WATCHED_KINDS if k.group == GATEWAY_GROUP and k.namespaced}
    sent = {plurals[resource]: ops for resource, ops in validated_operations(hook).items()}
    assert sent == {kind: set(ops) for kind, ops in VALIDATED_OPERATIONS.items()}
    assert "DELETE" not in sent["HTTPRoute"] and "DELETE" in sent["Gateway"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_webhooks_call_the_routewarden_service_on_its_paths(overlay: str) -> None:
    """clientConfig names the rendered Service and port, never a URL; validate and mutate paths."""
    objects = render(overlay)
    service = one(objects, "Service", "routewarden")
    ports = {p["port"] for p in service["spec"]["ports"]}
    for kind, hook in webhooks(objects):
        ref = hook["clientConfig"]["service"]
        assert "url" not in hook["clientConfig"]
        assert (ref["name"], ref["namespace"]) == (service["metadata"]["name"], service["metadata"]["namespace"])
        assert ref["port"] in ports
        assert ref["path"] == ("/validate" if kind == "ValidatingWebhookConfiguration" else "/mutate")


@pytest.mark.parametrize(
    ("name", "conditions"),
    [
        ("services.mutate.routewarden.dev", ["load-balancer", "generated-by-gateway-controller"]),
        ("services.validate.routewarden.dev", ["load-balancer", "generated-by-gateway-controller", "brings-the-marks"]),
    ],
)
def test_the_service_webhooks_are_filtered_by_match_conditions(name: str, conditions: list[str]) -> None:
    """Services are a core kind: both Service webhooks carry matchConditions, LoadBalancer first; validation
    sees only the writes that bring the marks."""
    hook = next(h for _, h in webhooks(render("base")) if h["name"] == name)
    assert [c["name"] for c in hook["matchConditions"]] == conditions


# --------------------------------------------------------------------------- CEL on real requests
def match_conditions(name: str) -> list[str]:
    hook = next(h for _, h in webhooks(render("base")) if h["name"] == name)
    return [c["expression"] for c in hook.get("matchConditions", [])]


def matches(name: str, request: Obj) -> bool:
    """Whether kube-apiserver would send ``request`` to webhook ``name`` (all conditions true)."""
    variables = {"object": request.get("object"), "oldObject": request.get("oldObject"), "request": request}
    results = [cel.evaluate(expression, variables) for expression in match_conditions(name)]
    assert all(isinstance(r, bool) for r in results), results
    return all(results)


def review(name: str) -> Obj:
    return json.loads((REVIEWS / f"{name}.json").read_text())["request"]


def service(*, type_: str = "LoadBalancer", labels: Obj | None = None, owners: list[Obj] | None = None) -> Obj:
    metadata: Obj = {"name": "svc", "namespace": "infra"}
    if labels is not None:
        metadata["labels"] = labels
    if owners is not None:
        metadata["ownerReferences"] = owners
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": {"type": type_}}
    return {"operation": "CREATE", "object": obj, "oldObject": None, "userInfo": {"username": "controller"}}


GATEWAY_OWNER = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "name": "shared", "uid": "u"}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(review("service-create-generated-loadbalancer.mutate"), True, id="captured-cilium-create"),
        pytest.param(review("service-update-annotation-removed.mutate"), True, id="captured-cilium-update"),
        pytest.param(review("service-create-clusterip.mutate"), False, id="captured-clusterip"),
        pytest.param(service(labels={"gateway.envoyproxy.io/owning-gateway-name": "eg"}), True, id="envoy-gateway"),
        pytest.param(service(labels={"istio.io/gateway-name": "gw"}), True, id="istio"),
        pytest.param(service(labels={"gateway.networking.k8s.io/gateway-name": "gw"}), True, id="gep-label"),
        pytest.param(service(owners=[GATEWAY_OWNER]), True, id="owned-by-gateway"),
        pytest.param(service(owners=[{**GATEWAY_OWNER, "apiVersion": "example.com/v1"}]), False, id="other-gateway"),
        pytest.param(service(labels={"app": "web"}), False, id="plain-load-balancer"),
        pytest.param(service(), False, id="no-labels"),
        pytest.param(service(type_="ClusterIP", labels={"istio.io/gateway-name": "gw"}), False, id="clusterip"),
    ],
)
def test_only_services_generated_by_a_gateway_controller_reach_the_mutation(request_: Obj, expected: bool) -> None:
    """The Service matchConditions select generated LoadBalancer Services, on real and built requests."""
    assert matches("services.mutate.routewarden.dev", request_) is expected


def with_change(request_: Obj, change: str) -> Obj:
    """A captured Service UPDATE with one more change to the new object."""
    request_ = copy.deepcopy(request_)
    obj, old = request_["object"], request_["oldObject"]
    if change == "label":
        obj["metadata"]["labels"]["gateway.envoyproxy.io/owning-gateway-name"] = "other"
    elif change == "owner":
        obj["metadata"]["ownerReferences"] = [GATEWAY_OWNER]
    elif change == "type":
        old["spec"]["type"] = "ClusterIP"
    elif change == "finalizer":
        obj["metadata"]["finalizers"] = ["service.kubernetes.io/load-balancer-cleanup"]
    return request_


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(review("service-create-generated-loadbalancer.validate"), True, id="captured-create"),
        pytest.param(review("service-update-annotation-removed.validate"), False, id="captured-annotation-update"),
        pytest.param(with_change(review("service-update-annotation-removed.validate"), "label"), True, id="label"),
        pytest.param(with_change(review("service-update-annotation-removed.validate"), "owner"), True, id="owner"),
        pytest.param(with_change(review("service-update-annotation-removed.validate"), "type"), True, id="type"),
        pytest.param(with_change(review("service-update-annotation-removed.validate"), "finalizer"), False,
                     id="cloud-finalizer"),
        pytest.param(review("service-create-clusterip.validate"), False, id="captured-clusterip"),
        pytest.param(service(labels={"gateway.envoyproxy.io/owning-gateway-name": "eg"}), True, id="look-alike"),
    ],
)
def test_only_writes_that_bring_a_controllers_marks_reach_service_validation(request_: Obj, expected: bool) -> None:
    """The Service validation conditions, on real and built requests: a CREATE, or an UPDATE that changes the
    labels, ownerReferences or the type; not the updates that leave the marks as they were."""
    assert matches("services.validate.routewarden.dev", request_) is expected


@pytest.mark.parametrize("label", sorted({
    implementations.GATEWAY_NAME, implementations.CILIUM_OWNING_GATEWAY, implementations.ISTIO_MANAGED,
    implementations.ISTIO_GATEWAY_NAME, implementations.ENVOY_GATEWAY_NAME, implementations.CONTOUR_OWNING_GATEWAY,
    implementations.KGATEWAY,
}))
def test_every_label_the_mutation_recognises_passes_the_match_conditions(label: str) -> None:
    """The webhook's matchConditions and the mutation's Service recognition cannot drift apart."""
    value = "kube-gateway" if label == implementations.KGATEWAY else "gw"
    labelled = service(labels={label: value})
    assert implementations.implementation_of(labelled["object"]["metadata"]["labels"], []) is not None
    assert matches("services.mutate.routewarden.dev", labelled)
    assert matches("services.validate.routewarden.dev", labelled)


def as_user(request: Obj, username: str) -> Obj:
    return {**request, "userInfo": {**request["userInfo"], "username": username}}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(review("httproute-delete.validate"), True, id="admin-delete"),
        pytest.param(review("httproute-create.validate"), True, id="admin-create"),
        pytest.param(as_user(review("httproute-delete.validate"),
                             "system:serviceaccount:kube-system:namespace-controller"), False, id="ns-cleanup"),
        pytest.param(as_user(review("referencegrant-delete-v1beta1.validate"),
                             "system:serviceaccount:kube-system:generic-garbage-collector"), False, id="gc"),
        pytest.param(as_user(review("httproute-delete.validate"), "system:kube-controller-manager"), False, id="kcm"),
        pytest.param(as_user(review("httproute-create.validate"),
                             "system:serviceaccount:kube-system:namespace-controller"), True, id="ns-ctl-create"),
    ],
)
def test_cluster_cleanup_deletes_never_wait_for_validation(request_: Obj, expected: bool) -> None:
    """Namespace deletion and garbage collection skip the validating webhook; everything else is sent."""
    assert matches("validate.routewarden.dev", request_) is expected


def captured(webhook: str) -> list[str]:
    index = json.loads((REVIEWS / "index.json").read_text())
    return sorted(name for name, entry in index.items() if entry["webhook"] == webhook)


@pytest.mark.parametrize("name", captured("validate"))
def test_every_captured_request_evaluates_the_validating_conditions_without_error(name: str) -> None:
    """On every real request the conditions evaluate to a boolean (an error would fail the write)."""
    assert matches("validate.routewarden.dev", review(name)) is True


@pytest.mark.parametrize("name", [n for n in captured("validate") + captured("mutate") if n.startswith("service-")])
@pytest.mark.parametrize("webhook", SERVICE_WEBHOOKS)
def test_every_captured_service_request_evaluates_the_service_conditions_without_error(webhook: str, name: str) -> None:
    """On every real Service request both Service webhooks' conditions evaluate to booleans."""
    assert isinstance(matches(webhook, review(name)), bool)


# --------------------------------------------------------------------------- workload
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_deployment_is_highly_available(overlay: str) -> None:
    """2+ replicas, spread over nodes, never all down in a rollout or a drain."""
    objects = render(overlay)
    deployment = one(objects, "Deployment", "routewarden")
    spec = deployment["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spread = {c["topologyKey"]: c for c in spec["template"]["spec"]["topologySpreadConstraints"]}
    assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert "topology.kubernetes.io/zone" in spread
    pdb = one(objects, "PodDisruptionBudget", "routewarden")
    assert pdb["spec"]["minAvailable"] >= 1 and pdb["spec"]["minAvailable"] < spec["replicas"]
    for selector in (pdb["spec"]["selector"]["matchLabels"], one(objects, "Service")["spec"]["selector"],
                     spec["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_is_locked_down(overlay: str) -> None:
    """Non-root 65532, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp."""
    pod = one(render(overlay), "Deployment")["spec"]["template"]["spec"]
    ctx = pod["containers"][0]["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 65532
    assert pod["automountServiceAccountToken"] is True
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_shutdown_fit_together(overlay: str) -> None:
    """HTTPS probes on /healthz and /readyz; preStop sleep, answer-and-close delay and drain end before SIGKILL."""
    objects = render(overlay)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    main = pod["containers"][0]
    port = next(p for p in main["ports"] if p["name"] == "https")
    assert arg_value(main["args"], "--port") == str(port["containerPort"])
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = main[probe]["httpGet"]
        assert (get["path"], get["scheme"], get["port"]) == (path, "HTTPS", "https")
    drain = float(arg_value(main["args"], "--shutdown-timeout") or "nan")
    delay = float(arg_value(main["args"], "--shutdown-delay") or "nan")
    sleep = main["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert sleep >= 1 and delay >= 1  # endpoints drop the pod; pooled connections move away
    assert pod["terminationGracePeriodSeconds"] > sleep + delay + drain
    assert main["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}  # bench: 188 MiB at 10k routes
    assert main["resources"]["limits"]["memory"] == "768Mi"
    assert "cpu" not in main["resources"]["limits"]
    target = one(objects, "Service")["spec"]["ports"][0]["targetPort"]
    assert target in (port["name"], port["containerPort"])


@pytest.mark.skipif(not (REPO / "webhook" / "cli.py").exists(), reason="no CLI yet")
@pytest.mark.parametrize("overlay", DEPLOYABLE)
def test_the_container_args_are_accepted_by_routewarden_serve(overlay: str) -> None:
    """The flags the Deployment passes exist in ``routewarden serve`` (the real parser)."""
    from webhook.cli import build_parser

    args = container(render(overlay))["args"]
    namespace = build_parser().parse_args(args)
    assert namespace.command == "serve"
    assert str(namespace.cert_dir) == arg_value(args, "--cert-dir")


# --------------------------------------------------------------------------- certificates and policies
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_mounted_policies_configmap_is_rendered_with_every_policy_file(overlay: str) -> None:
    """The mounted ConfigMap holds exactly the files the policy loader reads in policies/, byte for byte."""
    objects = render(overlay)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    name = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
    data = one(objects, "ConfigMap", name).get("data", {})
    files = {p.name: p.read_text() for p in policy_files(REPO / "policies")}
    assert files, "no policies to ship"
    assert data == files


def test_cert_manager_issues_the_mounted_secret_for_the_service_name_and_injects_its_ca() -> None:
    """The Certificate covers <svc>.<ns>.svc, writes the Secret the Pod mounts, and feeds caBundle."""
    objects = render("overlays/cert-manager")
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    secret = next(v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v)
    certificate = next(o for o in objects if o["kind"] == "Certificate" and o["spec"]["secretName"] == secret)
    svc = one(objects, "Service")["metadata"]
    assert f"{svc['name']}.{svc['namespace']}.svc" in certificate["spec"]["dnsNames"]
    issuer = one(objects, "Issuer", certificate["spec"]["issuerRef"]["name"])
    ca_secret = issuer["spec"]["ca"]["secretName"]
    ca_certificate = next(o for o in objects if o["kind"] == "Certificate" and o["spec"]["secretName"] == ca_secret)
    assert ca_certificate["spec"]["isCA"] is True
    assert "selfSigned" in one(objects, "Issuer", ca_certificate["spec"]["issuerRef"]["name"])["spec"]
    certificate_ref = f"{certificate['metadata']['namespace']}/{certificate['metadata']['name']}"
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        assert one(objects, kind)["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == certificate_ref


def test_self_managed_mode_writes_its_own_certificates_into_a_writable_dir() -> None:
    """Self-managed: the flags are passed, the cert dir is an emptyDir, and no Secret is mounted."""
    objects = render("overlays/self-managed")
    main = container(objects)
    assert "--self-managed-certs" in main["args"]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    mount = next(m for m in main["volumeMounts"] if m["mountPath"] == arg_value(main["args"], "--cert-dir"))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert "emptyDir" in volume and not mount.get("readOnly")
    assert not any("secret" in v for v in pod["volumes"])
    assert "--self-managed-certs" not in container(render("overlays/cert-manager"))["args"]


# --------------------------------------------------------------------------- RBAC
def rules_of(objects: list[Obj], subject: str = "routewarden") -> list[tuple[str, Obj]]:
    """(binding scope, rule) for every rule bound to the routewarden ServiceAccount."""
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in ("Role", "ClusterRole")}
    found = []
    for binding in (o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if any(s["kind"] == "ServiceAccount" and s["name"] == subject for s in binding["subjects"]):
            role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
            found += [(binding["kind"], rule) for rule in role["rules"]]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rbac_grants_no_wildcards_and_only_reads_what_the_view_watches(overlay: str) -> None:
    """No '*'; cluster-wide it reads the watched kinds and writes only PolicyReports."""
    watched = {(k.group, k.plural) for k in WATCHED_KINDS}
    for scope, rule in rules_of(render(overlay)):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field]
        pairs = {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
        writes = set(rule["verbs"]) - {"get", "list", "watch"}
        if not writes:
            assert pairs <= watched, pairs - watched
        elif scope == "ClusterRoleBinding" and "resourceNames" not in rule:
            assert {g for g, _ in pairs} == {"wgpolicyk8s.io"}, rule
        assert ("", "secrets") not in pairs or scope == "RoleBinding", "Secrets only in its own namespace"
    granted = {(g, r) for _, rule in rules_of(render(overlay)) if {"list", "watch"} <= set(rule["verbs"])
               for g in rule["apiGroups"] for r in rule["resources"]}
    assert watched <= granted


@pytest.mark.parametrize(
    ("overlay", "writes_secret"),
    [("base", False), ("overlays/cert-manager", False), ("overlays/self-managed", True)],
)
def test_only_self_managed_mode_may_write_the_tls_secret_and_webhook_configurations(
    overlay: str, writes_secret: bool
) -> None:
    """cert-manager mode never writes Secrets; self-managed writes one Secret and its own configurations."""
    rules = [rule for _, rule in rules_of(render(overlay))]
    secret_writes = [r for r in rules if "secrets" in r["resources"] and set(r["verbs"]) - {"get"}]
    assert bool(secret_writes) is writes_secret
    for rule in secret_writes:
        assert rule["verbs"] == ["create"] or rule["resourceNames"] == ["routewarden-tls"]
    for rule in rules:
        if rule["apiGroups"] == ["admissionregistration.k8s.io"]:
            assert writes_secret and rule["resourceNames"] == ["routewarden"]
            assert set(rule["verbs"]) == {"get", "patch"}


@pytest.mark.parametrize("overlay", DEPLOYABLE)
def test_the_reconciler_may_apply_services_only_where_it_is_told_to_and_hold_only_its_lease(overlay: str) -> None:
    """Services: get/list/watch/patch through RoleBindings in exactly the --reconcile-namespace namespaces, never
    cluster-wide; Leases: create, and get/update of its own Lease, in routewarden's namespace only."""
    from webhook.cli import build_parser

    objects = render(overlay)
    args = build_parser().parse_args(container(objects)["args"])
    assert args.reconcile == "dry-run" and args.reconcile_namespace
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in ("Role", "ClusterRole")}
    service_namespaces, lease_rules = set(), []
    for binding in (o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if not any(s["kind"] == "ServiceAccount" and s["name"] == "routewarden" for s in binding["subjects"]):
            continue
        for rule in roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]["rules"]:
            if "services" in rule["resources"]:
                assert binding["kind"] == "RoleBinding", "Services are never granted cluster-wide"
                assert rule["apiGroups"] == [""] and set(rule["verbs"]) == {"get", "list", "watch", "patch"}
                service_namespaces.add(binding["metadata"]["namespace"])
            if "leases" in rule["resources"]:
                assert binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] == NAMESPACE
                lease_rules.append(rule)
    assert service_namespaces == set(args.reconcile_namespace)
    assert {tuple(r["verbs"]): r.get("resourceNames") for r in lease_rules} == {
        ("create",): None, ("get", "update"): [args.leader_elect_resource_name]}


# --------------------------------------------------------------------------- image
def dockerfile_stages() -> list[list[str]]:
    """Dockerfile instructions (continuations joined, comments dropped), split by FROM."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """hadolint (with .hadolint.yaml, threshold info) reports no finding."""
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), "--config", str(REPO / ".hadolint.yaml"), str(REPO / "Dockerfile")],
                          check=False, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_image_is_multi_stage_pinned_and_runs_routewarden_as_nonroot() -> None:
    """Both stages use one pinned python slim; the final one copies the venv only and runs as 65532."""
    stages = dockerfile_stages()
    assert len(stages) == 2
    bases = {stage[0].split()[1] for stage in stages}
    assert len(bases) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", bases.pop())
    final = stages[-1]
    assert [i for i in final if i.startswith("COPY")] == ["COPY --from=builder /opt/venv /opt/venv"]
    assert not any(re.search(r"\b(pip|apt-get|apk|gcc)\b", i) for i in final if i.startswith("RUN"))
    assert "USER 65532:65532" in final
    entrypoint = next(i for i in final if i.startswith("ENTRYPOINT"))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT")) == ["routewarden"]
    cmd = json.loads(next(i for i in final if i.startswith("CMD")).removeprefix("CMD"))
    args = container(render("overlays/cert-manager"))["args"]
    assert cmd[0] == "serve" and cmd[cmd.index("--cert-dir") + 1] == arg_value(args, "--cert-dir")


def test_the_docker_build_context_holds_only_the_package() -> None:
    """.dockerignore excludes everything but pyproject.toml, README.md and webhook/."""
    lines = [ln for ln in (REPO / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    assert {ln[1:] for ln in lines if ln.startswith("!")} == {"pyproject.toml", "README.md", "webhook/"}
    copied = {i.split()[1] for stage in dockerfile_stages() for i in stage if i.startswith("COPY ")}
    assert copied == {"pyproject.toml", "webhook", "--from=builder"}


# --------------------------------------------------------------------------- checkov
def checkov() -> Path:
    """checkov in its own venv (.venv-tools): its pins clash with ours. Installed from PyPI once."""
    binary = TOOLS_VENV / "bin" / "checkov"
    if not binary.exists():
        venv.create(TOOLS_VENV, with_pip=True, symlinks=True, clear=True)
        done = subprocess.run([str(TOOLS_VENV / "bin" / "pip"), "install", "-q", CHECKOV],
                              check=False, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    return binary


def checkov_failures(*args: str) -> list[str]:
    """Failed checks of one checkov run (offline: --skip-download)."""
    done = subprocess.run([str(checkov()), *args, "--skip-download", "--output", "json", "--compact", "--quiet"],
                          check=False, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    return [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in failed]


@pytest.mark.timeout(1200)
def test_checkov_finds_nothing_in_the_manifests_the_overlays_render_or_the_dockerfile(tmp_path: Path) -> None:
    """checkov passes deploy/, every rendered overlay and the Dockerfile; skips carry their reason inline."""
    for overlay in OVERLAYS:
        out = tmp_path / overlay.replace("/", "-")
        out.mkdir()
        (out / "all.yaml").write_text(build(DEPLOY / overlay))
    assert checkov_failures("-d", str(DEPLOY), "--framework", "kubernetes") == []
    assert checkov_failures("-d", str(tmp_path), "--framework", "kubernetes") == []
    assert checkov_failures("-f", str(REPO / "Dockerfile"), "--framework", "dockerfile") == []

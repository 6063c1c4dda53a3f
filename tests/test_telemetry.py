"""Telemetry: metrics exposition, one span per review, the decision log, alert and dashboard wiring."""

from __future__ import annotations

import http.server
import io
import json
import logging
import math
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from webhook.admission import AdmissionRequest, parse_review
from webhook.decision import Decision, ExceptionUse, Mode, Violation, allowed, from_violations, invalid
from webhook.logs import JsonFormatter, configure_logging
from webhook.policy.loader import PolicyStore
from webhook.runtime import Runtime
from webhook.state.store import ClusterState
from webhook.telemetry import DURATION_BUCKETS, Telemetry, decision_label, traces_exporter_names

REPO = Path(__file__).resolve().parents[1]
REVIEWS = REPO.parent / "shared" / "admission-reviews"  # shared/ sits beside the clone, in CI too
INDEX = json.loads((REVIEWS / "index.json").read_text())
OBSERVABILITY = REPO / "deploy" / "observability"
SECRET = "c3VwZXItc2VjcmV0LXRva2Vu-DO-NOT-LEAK"

DENIED = from_violations([
    Violation("attachment/NotAllowedByListeners", "NotAllowedByListeners", "no", mode=Mode.ENFORCE),
    Violation("hostname/Unique", "HostnameConflict", "taken", mode=Mode.WARN),
])
PATCHED = allowed(patch=({"op": "add", "path": "/metadata/annotations/x", "value": "y"},))
EXCEPTED = Decision(allowed=True, exceptions=(
    ExceptionUse("catch-all-redirect", "hostnames/HostnameRequired", "shared-gateway", "spec.hostnames", "redirect"),))


def review(name: str) -> AdmissionRequest:
    return parse_review(json.loads((REVIEWS / f"{name}.json").read_text()))


def secret_review() -> AdmissionRequest:
    """A real review turned into one about a Secret whose data and annotations hold SECRET."""
    document = json.loads((REVIEWS / "service-create-clusterip.validate.json").read_text())
    request = document["request"]
    request["kind"] = request["requestKind"] = {"group": "", "version": "v1", "kind": "Secret"}
    request["resource"] = request["requestResource"] = {"group": "", "version": "v1", "resource": "secrets"}
    request["name"] = "apples-token"
    obj = request["object"]
    obj.update(kind="Secret", data={"token": SECRET}, stringData={"password": SECRET})
    obj["metadata"]["name"] = "apples-token"
    obj["metadata"].setdefault("annotations", {})["leak"] = SECRET
    obj.pop("spec", None)
    return parse_review(document)


def samples(telemetry: Telemetry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = telemetry.metrics()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(telemetry: Telemetry, name: str, **labels: str) -> float:
    return samples(telemetry).get((name, frozenset(labels.items())), 0.0)


def record(telemetry: Telemetry, request: AdmissionRequest, decision: Decision, *, webhook: str = "validate",
           **kwargs: Any) -> None:
    with telemetry.admission(webhook=webhook, request=request, **kwargs) as rec:
        rec.finish(decision)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def telemetry(spans: InMemorySpanExporter) -> Iterator[Telemetry]:
    t = Telemetry.setup(span_exporter=spans, environ={})
    yield t
    t.shutdown()


@pytest.fixture
def decision_lines(caplog: pytest.LogCaptureFixture) -> Any:
    """The decision log, each record rendered by the JSON formatter the CLI installs."""
    caplog.set_level(logging.DEBUG, logger="routewarden.decision")
    formatter = JsonFormatter()

    def lines() -> list[tuple[int, str]]:
        return [(r.levelno, formatter.format(r)) for r in caplog.records if r.name == "routewarden.decision"]

    return lines


def busy(telemetry: Telemetry) -> ClusterState:
    """Exercise every kind of event once, so every metric family has samples."""
    record(telemetry, review("httproute-create.validate"), allowed())
    record(telemetry, review("httproute-create.validate"), DENIED)
    record(telemetry, review("service-create-generated-loadbalancer.mutate"), PATCHED, webhook="mutate")
    record(telemetry, review("httproute-create.validate"), EXCEPTED)
    telemetry.review_rejected(webhook="validate", status=400, reason="BadRequest")
    telemetry.policy_reloaded(ok=True)
    telemetry.policy_reloaded(ok=False)
    telemetry.certificate_expiry(time.time() + 86400)
    telemetry.audit_results({("hostname/Unique", "enforce", "apples"): 2})
    telemetry.reconcile_leader(True)
    telemetry.reconcile_queue(3)
    telemetry.reconciled(mode="on", result="applied", namespace="infra", name="svc", changes=["set a"])
    state = ClusterState(expected_kinds=["HTTPRoute", "Gateway"])
    state.apply("HTTPRoute", review("httproute-create.validate").subject)
    state.mark_synced("HTTPRoute")
    telemetry.watch_state(state, max_age=lambda: 300.0)
    return state


# ------------------------------------------------------------------------- metrics
def test_request_counters_move_by_webhook_kind_operation_decision_and_dry_run(telemetry: Telemetry) -> None:
    """Each review adds one to the counter series of its labels, and only to it."""
    create, dry = review("httproute-create.validate"), review("httproute-create-dryrun.validate")
    record(telemetry, create, allowed())
    record(telemetry, create, allowed())
    record(telemetry, create, DENIED)
    record(telemetry, dry, DENIED)
    name = "routewarden_admission_requests_total"
    labels = {"webhook": "validate", "kind": "HTTPRoute", "operation": "CREATE"}
    assert value(telemetry, name, **labels, decision="allowed", dry_run="false") == 2
    assert value(telemetry, name, **labels, decision="denied", dry_run="false") == 1
    assert value(telemetry, name, **labels, decision="denied", dry_run="true") == 1
    assert value(telemetry, "routewarden_violations_total", rule="attachment/NotAllowedByListeners",
                 mode="enforce") == 2
    assert value(telemetry, "routewarden_violations_total", rule="hostname/Unique", mode="warn") == 2


def test_histogram_has_sub_millisecond_to_ten_second_buckets_and_counts_every_review(telemetry: Telemetry) -> None:
    """Buckets run from 0.1 ms to 10 s; a slow review lands only in the buckets above its latency."""
    request = review("gateway-create.validate")
    record(telemetry, request, allowed())
    with telemetry.admission(webhook="validate", request=request) as rec:
        time.sleep(0.003)
        rec.finish(allowed())
    got = samples(telemetry)
    buckets = {dict(labels)["le"]: v for (name, labels), v in got.items()
               if name == "routewarden_admission_duration_seconds_bucket"}
    assert [float(le) for le in buckets] == [*DURATION_BUCKETS, math.inf]
    assert DURATION_BUCKETS[0] == 0.0001 and DURATION_BUCKETS[-1] == 10.0
    assert buckets["+Inf"] == buckets["10.0"] == 2
    assert buckets["0.0025"] <= 1
    counted = got[("routewarden_admission_duration_seconds_count", frozenset({("webhook", "validate"),
                                                                            ("kind", "Gateway")}))]
    total = got[("routewarden_admission_duration_seconds_sum", frozenset({("webhook", "validate"),
                                                                        ("kind", "Gateway")}))]
    assert counted == 2 and total >= 0.003


@pytest.mark.parametrize(
    ("decision", "label"),
    [
        (allowed(), "allowed"),
        (PATCHED, "allowed"),
        (from_violations([Violation("r/W", "W", "m", mode=Mode.WARN)]), "allowed"),
        (DENIED, "denied"),
        (invalid("spec.hostnames must be a list"), "denied"),
        (Decision(allowed=False, code=500, reason="InternalError", message="x"), "error"),
    ],
)
def test_decision_label_names_the_outcome_the_apiserver_saw(decision: Decision, label: str) -> None:
    """Allowed (with or without patch or warnings), denied (rules or bad fields), error for a server fault."""
    assert decision_label(decision) == label


def test_patches_are_counted_by_kind_only_when_a_patch_is_sent(telemetry: Telemetry) -> None:
    """A mutate answer with a patch counts; an empty one does not."""
    service = review("service-create-generated-loadbalancer.mutate")
    record(telemetry, service, PATCHED, webhook="mutate")
    record(telemetry, service, allowed(), webhook="mutate")
    assert value(telemetry, "routewarden_patches_total", kind="Service") == 1


def test_a_raising_block_is_recorded_as_error_and_the_exception_propagates(
        telemetry: Telemetry, spans: InMemorySpanExporter) -> None:
    """decision=error in metrics and span, ERROR span status, and the caller still sees the exception."""
    request = review("httproute-delete.validate")
    with pytest.raises(KeyError), telemetry.admission(webhook="validate", request=request):
        raise KeyError("spec")
    assert value(telemetry, "routewarden_admission_requests_total", webhook="validate", kind="HTTPRoute",
                 operation="DELETE", decision="error", dry_run="false") == 1
    (span,) = spans.get_finished_spans()
    assert span.attributes["admission.decision"] == "error"
    assert span.attributes["error.type"] == "KeyError"
    assert span.status.status_code.name == "ERROR"


def test_a_block_that_never_finishes_is_an_error(telemetry: Telemetry) -> None:
    """Leaving the block without a decision is a handler bug, and it shows as decision=error."""
    with telemetry.admission(webhook="mutate", request=review("grpcroute-create.mutate")):
        pass
    assert value(telemetry, "routewarden_admission_requests_total", webhook="mutate", kind="GRPCRoute",
                 operation="CREATE", decision="error", dry_run="false") == 1


def test_rejected_reviews_count_by_status_and_as_a_rejected_decision(telemetry: Telemetry) -> None:
    """Envelope errors have their own counter and a decision=rejected series."""
    telemetry.review_rejected(webhook="validate", status=400, reason="BadRequest")
    telemetry.review_rejected(webhook="validate", status=413, reason="RequestEntityTooLarge")
    telemetry.review_rejected(webhook="validate", status=400, reason="BadRequest")
    assert value(telemetry, "routewarden_review_rejected_total", webhook="validate", status="400") == 2
    assert value(telemetry, "routewarden_review_rejected_total", webhook="validate", status="413") == 1
    assert value(telemetry, "routewarden_admission_requests_total", webhook="validate", kind="unknown",
                 operation="unknown", decision="rejected", dry_run="false") == 3


def test_cache_metrics_are_read_from_the_cluster_view_at_scrape_time(telemetry: Telemetry) -> None:
    """synced, object count and last event age per expected kind follow the state between scrapes."""
    state = ClusterState(expected_kinds=["HTTPRoute", "Gateway"])
    telemetry.watch_state(state)
    assert value(telemetry, "routewarden_cache_synced", kind="Gateway") == 0
    assert ("routewarden_cache_last_event_age_seconds", frozenset({("kind", "Gateway")})) not in samples(telemetry)
    state.replace("Gateway", [review("gateway-create.validate").subject])
    state.apply("HTTPRoute", review("httproute-create.validate").subject)
    state.apply("HTTPRoute", review("grpcroute-create.validate").subject | {"metadata": {"name": "other",
                                                                                          "namespace": "apples"}})
    state.mark_synced("Gateway")
    got = samples(telemetry)
    assert got[("routewarden_cache_synced", frozenset({("kind", "Gateway")}))] == 1
    assert got[("routewarden_cache_synced", frozenset({("kind", "HTTPRoute")}))] == 0
    assert got[("routewarden_cache_objects", frozenset({("kind", "HTTPRoute")}))] == 2
    assert got[("routewarden_cache_objects", frozenset({("kind", "Gateway")}))] == 1
    assert 0 <= got[("routewarden_cache_last_event_age_seconds", frozenset({("kind", "Gateway")}))] < 60
    assert 0 <= got[("routewarden_cache_confirmed_age_seconds", frozenset({("kind", "Gateway")}))] < 60
    state.mark_alive("Gateway", at=time.monotonic() - 1000)  # a watch silent for 1000 s, no bookmark
    assert value(telemetry, "routewarden_cache_confirmed_age_seconds", kind="Gateway") >= 1000
    assert ("routewarden_cache_max_age_seconds", frozenset()) not in samples(telemetry)  # no limit given


def test_the_staleness_limit_is_exported_and_kinds_that_cannot_be_listed_have_no_confirmed_age(
    telemetry: Telemetry,
) -> None:
    """The limit is read at each scrape; an unavailable kind (no CRD, no RBAC) is left out, as the engine leaves it."""
    state = ClusterState(expected_kinds=["HTTPRoute", "UDPRoute"])
    state.mark_synced("HTTPRoute")
    state.mark_unavailable("UDPRoute", "udproutes.gateway.networking.k8s.io is not served in v1, v1alpha2")
    limit = [60.0]
    telemetry.watch_state(state, max_age=lambda: limit[0])
    got = samples(telemetry)
    assert got[("routewarden_cache_max_age_seconds", frozenset())] == 60.0
    assert ("routewarden_cache_confirmed_age_seconds", frozenset({("kind", "HTTPRoute")})) in got
    assert ("routewarden_cache_confirmed_age_seconds", frozenset({("kind", "UDPRoute")})) not in got
    assert got[("routewarden_cache_synced", frozenset({("kind", "UDPRoute")}))] == 0
    limit[0] = 20.0
    assert value(telemetry, "routewarden_cache_max_age_seconds") == 20.0


def test_policy_reloads_certificate_expiry_and_audit_results_are_exported(telemetry: Telemetry) -> None:
    """Reload results count; the last success time, cert notAfter and the latest audit are gauges."""
    assert value(telemetry, "routewarden_policy_reloads_total", result="failure") == 0  # exists before any
    before = time.time()
    telemetry.policy_reloaded(ok=True)
    telemetry.policy_reloaded(ok=False)
    telemetry.certificate_expiry(1_900_000_000.0)
    telemetry.audit_results({("hostname/Unique", "enforce"): 3, ("refs/RefNotPermitted", Mode.AUDIT, "apples"): 1})
    telemetry.audit_results({("refs/RefNotPermitted", Mode.AUDIT, "apples"): 2})
    assert value(telemetry, "routewarden_policy_reloads_total", result="success") == 1
    assert value(telemetry, "routewarden_policy_reloads_total", result="failure") == 1
    assert value(telemetry, "routewarden_policy_last_reload_success_timestamp_seconds") >= before
    assert value(telemetry, "routewarden_certificate_expiry_timestamp_seconds") == 1_900_000_000.0
    audit = {labels: v for (name, labels), v in samples(telemetry).items() if name == "routewarden_audit_violations"}
    assert audit == {frozenset({("rule", "refs/RefNotPermitted"), ("mode", "audit"), ("namespace", "apples")}): 2}


def test_two_instances_keep_separate_registries() -> None:
    """No global registry: what one instance records, another does not show."""
    first, second = Telemetry(), Telemetry()
    record(first, review("httproute-create.validate"), allowed())
    assert value(first, "routewarden_admission_requests_total", webhook="validate", kind="HTTPRoute",
                 operation="CREATE", decision="allowed", dry_run="false") == 1
    assert value(second, "routewarden_admission_requests_total", webhook="validate", kind="HTTPRoute",
                 operation="CREATE", decision="allowed", dry_run="false") == 0


def test_metrics_negotiate_openmetrics_when_asked(telemetry: Telemetry) -> None:
    """Prometheus text by default; OpenMetrics (with its # EOF trailer) for an OpenMetrics Accept header."""
    body, content_type = telemetry.metrics()
    assert content_type.startswith("text/plain") and b"routewarden_policy_reloads_total" in body
    body, content_type = telemetry.metrics(accept="application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")


# ------------------------------------------------------------------------- spans
@pytest.mark.parametrize("name", sorted(INDEX))
def test_every_captured_review_gives_one_span_with_its_identity(
        name: str, telemetry: Telemetry, spans: InMemorySpanExporter) -> None:
    """One span per review, named after the webhook, with kind, namespace, name, operation, dry run and uid."""
    entry = INDEX[name]
    request = review(name)
    webhook = entry["webhook"]
    record(telemetry, request, DENIED, webhook=webhook, request_id="audit-1")
    (span,) = spans.get_finished_spans()
    assert span.name == f"admission.{webhook}"
    assert span.kind.name == "SERVER"
    assert dict(span.attributes) == {
        "k8s.resource.kind": entry["kind"]["kind"],
        "k8s.namespace.name": entry["namespace"] or "",
        "k8s.object.name": entry["name"],
        "admission.webhook": webhook,
        "admission.operation": entry["operation"],
        "admission.dry_run": entry["dryRun"],
        "admission.decision": "denied",
        "admission.rules": ("attachment/NotAllowedByListeners", "hostname/Unique"),
        "admission.uid": request.uid,
        "admission.warnings": 1,
        "admission.patch_ops": 0,
        "http.request_id": "audit-1",
    }


def test_spans_and_metrics_carry_no_object_contents(telemetry: Telemetry, spans: InMemorySpanExporter) -> None:
    """A Secret's data and annotations appear nowhere in the span or the exposition."""
    request = secret_review()
    assert SECRET in json.dumps(request.object)
    record(telemetry, request, DENIED)
    (span,) = spans.get_finished_spans()
    assert span.attributes["k8s.resource.kind"] == "Secret"
    assert SECRET not in span.to_json()
    assert SECRET.encode() not in telemetry.metrics()[0]


def test_a_traceparent_header_makes_the_span_a_child_of_the_apiservers(
        telemetry: Telemetry, spans: InMemorySpanExporter) -> None:
    """kube-apiserver with tracing on sends traceparent; the admission span joins that trace."""
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
    record(telemetry, review("gateway-create.validate"), allowed(), headers=headers)
    (span,) = spans.get_finished_spans()
    assert format(span.context.trace_id, "032x") == trace_id
    assert format(span.parent.span_id, "016x") == parent_id


# ------------------------------------------------------------------------- decision log
def test_the_decision_log_line_is_json_with_the_request_identity_and_no_object(
        telemetry: Telemetry, decision_lines: Any) -> None:
    """One JSON line with uid, user, kind, namespace, name, operation, dry run, decision, rules, counts, latency."""
    request = secret_review()
    record(telemetry, request, DENIED, request_id="req-7")
    ((level, text),) = decision_lines()
    assert level == logging.INFO
    assert SECRET not in text
    line = json.loads(text)
    assert line["logger"] == "routewarden.decision"
    assert {k: line[k] for k in ("uid", "user", "kind", "namespace", "name", "operation", "dry_run",
                                 "decision", "rules", "warnings", "request_id")} == {
        "uid": request.uid, "user": "harness-admin", "kind": "Secret", "namespace": "apples",
        "name": "apples-token", "operation": "CREATE", "dry_run": False, "decision": "denied",
        "rules": ["attachment/NotAllowedByListeners", "hostname/Unique"], "warnings": 1, "request_id": "req-7",
    }
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
    assert not {"object", "oldObject", "old_object", "groups", "extra"} & line.keys()


def test_the_log_names_the_user_without_groups_or_credentials(telemetry: Telemetry, decision_lines: Any) -> None:
    """A ServiceAccount token review logs the username only: no credential id, no groups."""
    request = review("httproute-apply-update-serviceaccount-token.validate")
    record(telemetry, request, DENIED)
    ((_, text),) = decision_lines()
    assert json.loads(text)["user"] == "system:serviceaccount:flux-system:kustomize-controller"
    for credential in request.user.extra["authentication.kubernetes.io/credential-id"]:
        assert credential not in text
    assert "system:serviceaccounts" not in text


@pytest.mark.parametrize(
    ("decision", "level"),
    [
        (allowed(), logging.DEBUG),
        (PATCHED, logging.DEBUG),
        (allowed(warnings=("deprecated field",)), logging.INFO),
        (from_violations([Violation("r/A", "A", "m", mode=Mode.AUDIT)]), logging.INFO),
        (DENIED, logging.INFO),
        (Decision(allowed=False, code=500, reason="InternalError"), logging.INFO),
    ],
)
def test_quiet_allows_log_at_debug_and_findings_at_info(
        decision: Decision, level: int, telemetry: Telemetry, decision_lines: Any) -> None:
    """A busy cluster logs only what someone needs to read at INFO."""
    record(telemetry, review("httproute-update-add-hostname.validate"), decision)
    ((got, _),) = decision_lines()
    assert got == level


def test_an_error_is_logged_at_error_with_the_exception_type_only(telemetry: Telemetry, decision_lines: Any) -> None:
    """The exception's message may quote the object, so only its type is logged."""
    with pytest.raises(ValueError), telemetry.admission(webhook="validate", request=secret_review()):
        raise ValueError(f"bad value {SECRET}")
    ((level, text),) = decision_lines()
    assert level == logging.ERROR
    assert json.loads(text)["error"] == "ValueError"
    assert SECRET not in text


# ------------------------------------------------------------------------- exporters
@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, ()),
        ({"OTEL_SERVICE_NAME": "rw"}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, ()),
        ({"OTEL_TRACES_EXPORTER": "console"}, ("console",)),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ("otlp", "console")),
    ],
)
def test_exporters_follow_the_standard_otel_variables(environ: dict[str, str], names: tuple[str, ...]) -> None:
    """Nothing is exported unless an endpoint or OTEL_TRACES_EXPORTER asks; none and SDK_DISABLED win."""
    assert traces_exporter_names(environ) == names


def test_without_otel_variables_there_is_no_exporter_and_no_tracer_provider(
        monkeypatch: pytest.MonkeyPatch, decision_lines: Any) -> None:
    """The default process has a no-op tracer: reviews are still counted and logged, no span is made."""
    import os
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        monkeypatch.delenv(key)
    telemetry = Telemetry.setup()
    assert telemetry.exporters == () and not telemetry.tracing
    record(telemetry, review("httproute-create.validate"), DENIED)
    assert value(telemetry, "routewarden_admission_requests_total", webhook="validate", kind="HTTPRoute",
                 operation="CREATE", decision="denied", dry_run="false") == 1
    ((_, text),) = decision_lines()
    assert "trace_id" not in json.loads(text)
    telemetry.shutdown()


class _Collector(http.server.BaseHTTPRequestHandler):
    """A minimal OTLP/HTTP trace receiver on loopback."""

    received: list[tuple[str, str, bytes]]  # set per server by the fixture

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_an_otlp_endpoint_exports_spans_over_http_on_shutdown(
        monkeypatch: pytest.MonkeyPatch, collector: tuple[str, list[tuple[str, str, bytes]]]) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT turns on a batch OTLP/HTTP exporter; shutdown flushes it."""
    endpoint, received = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "routewarden-test")
    telemetry = Telemetry.setup()
    assert telemetry.exporters == ("OTLPSpanExporter",)
    record(telemetry, secret_review(), DENIED)
    telemetry.shutdown()
    ((path, content_type, body),) = received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert SECRET.encode() not in body
    export = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = export.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "routewarden-test"
    ((span,),) = [scope.spans for scope in resource_spans.scope_spans]
    assert span.name == "admission.validate"


# ------------------------------------------------------------------------- logging setup
@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_configure_logging_writes_decision_fields_in_either_format(fmt: str, root_logger: logging.Logger) -> None:
    """JSON gives one object per line; text gives key=value pairs after the message."""
    stream = io.StringIO()
    configure_logging("INFO", fmt, stream=stream)  # type: ignore[arg-type]
    record(Telemetry(), review("httproute-create.validate"), DENIED)
    record(Telemetry(), review("httproute-create.validate"), allowed())  # DEBUG: filtered out
    (text,) = stream.getvalue().splitlines()
    if fmt == "json":
        assert json.loads(text)["decision"] == "denied"
    else:
        assert " INFO routewarden.decision denied HTTPRoute apples/route " in text
        assert "rules=attachment/NotAllowedByListeners,hostname/Unique" in text


def test_configure_logging_refuses_an_unknown_format(root_logger: logging.Logger) -> None:
    """A typo in --log-format fails at start, not silently."""
    with pytest.raises(ValueError, match="json"):
        configure_logging("INFO", "yaml")  # type: ignore[arg-type]


# ------------------------------------------------------------------------- alerts and dashboard
def _exported_names() -> set[str]:
    telemetry = Telemetry()
    busy(telemetry)
    return {name for name, _ in samples(telemetry)}


def _selectors(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((OBSERVABILITY / "prometheusrule.yaml").read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1" and document["kind"] == "PrometheusRule"
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    grafana = {"$__rate_interval": "5m", "$__range": "1h", "$namespace": ".*"}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return [re.sub(r"\$\w+", lambda m: grafana[m.group(0)], e) for e in exprs]


Series = dict[frozenset[tuple[str, str]], float]
_COMPARE = {">": float.__gt__, "<": float.__lt__, ">=": float.__ge__, "<=": float.__le__, "==": float.__eq__}
TARGET = {"namespace": "routewarden-system", "instance": "10.0.0.7:8443"}  # labels Prometheus adds


def _evaluate(node: Any, series: dict[str, Series]) -> Series | float:
    """PromQL, as far as the cluster-view alerts use it (selectors, max/min by, comparisons
    and ``and`` with ``on`` matching), at one instant."""
    if isinstance(node, promql_parser.ParenExpr):
        return _evaluate(node.expr, series)
    if isinstance(node, promql_parser.NumberLiteral):
        return float(node.val)
    if isinstance(node, promql_parser.VectorSelector):
        assert str(node.matchers) in ("", "{}"), f"matchers are not evaluated here: {node}"
        return dict(series.get(node.name, {}))
    if isinstance(node, promql_parser.AggregateExpr):
        assert str(node.modifier.type).endswith("By"), node
        groups: dict[frozenset[tuple[str, str]], list[float]] = {}
        for labels, v in _evaluate(node.expr, series).items():  # type: ignore[union-attr]
            groups.setdefault(frozenset(kv for kv in labels if kv[0] in node.modifier.labels), []).append(v)
        fn = {"max": max, "min": min}[str(node.op)]
        return {group: fn(values) for group, values in groups.items()}
    assert isinstance(node, promql_parser.BinaryExpr), node
    op, lhs, rhs = str(node.op), _evaluate(node.lhs, series), _evaluate(node.rhs, series)
    assert isinstance(lhs, dict), node
    if isinstance(rhs, float):
        return {labels: v for labels, v in lhs.items() if _COMPARE[op](v, rhs)}
    matching = node.modifier.matching if node.modifier is not None else None
    on = set(matching.labels) if matching is not None else None

    def key(labels: frozenset[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        return frozenset(kv for kv in labels if on is None or kv[0] in on)

    right = {key(labels): v for labels, v in rhs.items()}
    assert len(right) == len(rhs), f"many-to-many matching in {node}"
    return {labels: v for labels, v in lhs.items()
            if key(labels) in right and (op == "and" or _COMPARE[op](v, right[key(labels)]))}


def firing(alert: str, scraped: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> set[str]:
    """The kinds ``alert``'s expression selects in one scrape of routewarden (``for`` aside)."""
    (rule,) = [r for r in _rules() if r.get("alert") == alert]
    series: dict[str, Series] = {}
    for (name, labels), v in scraped.items():
        series.setdefault(name, {})[labels | frozenset(TARGET.items())] = v
    result = _evaluate(promql_parser.parse(rule["expr"]), series)
    assert isinstance(result, dict)
    return {dict(labels).get("kind", "") for labels in result}


def test_the_alerts_cover_the_failure_modes_we_page_for() -> None:
    """Down, denial spike, p99 latency, stale cache, reload failures, certificate expiry and failing reconciler
    applies each have an alert."""
    alerts = {rule["alert"] for rule in _rules()}
    assert {"RoutewardenDown", "RoutewardenDenialSpike", "RoutewardenLatencyHigh", "RoutewardenCacheStale",
            "RoutewardenWatchBehind", "RoutewardenPolicyReloadFailing", "RoutewardenCertificateExpiringSoon",
            "RoutewardenReconcileApplyFailing"} <= alerts
    for rule in _rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def test_every_alert_expression_parses_and_uses_only_metrics_we_export() -> None:
    """A renamed metric breaks this test instead of silently silencing an alert."""
    exported = _exported_names() | {"up"}
    for rule in _rules():
        used = _selectors(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)


STALE_AFTER_60 = """
apiVersion: routewarden.dev/v1alpha1
kind: TenancyPolicy
metadata: {name: p}
spec:
  staleState: {mode: warn, maxAgeSeconds: 60}
"""
KINDS = ("Namespace", "Gateway", "HTTPRoute", "ReferenceGrant", "UDPRoute")


@pytest.mark.parametrize(("confirmed", "unavailable", "unsynced", "stale"), [
    ({"Namespace": 2, "Gateway": 15, "HTTPRoute": 19, "ReferenceGrant": 19, "UDPRoute": 19}, (), (), set()),
    ({"Namespace": 2, "Gateway": 15, "HTTPRoute": 19, "ReferenceGrant": 59, "UDPRoute": 19}, (), (), set()),
    ({"Namespace": 2, "Gateway": 15, "HTTPRoute": 19, "ReferenceGrant": 61, "UDPRoute": 19}, (), (),
     {"ReferenceGrant"}),
    ({"Namespace": 400, "Gateway": 400, "HTTPRoute": 400, "ReferenceGrant": 400, "UDPRoute": 400}, (), (), set(KINDS)),
    ({"Namespace": 2, "Gateway": 15, "HTTPRoute": 19, "ReferenceGrant": 19, "UDPRoute": 5000}, ("UDPRoute",), (),
     set()),
    ({"Namespace": 2, "Gateway": 15, "HTTPRoute": 100, "ReferenceGrant": 19, "UDPRoute": 19}, (), ("HTTPRoute",),
     {"HTTPRoute"}),
], ids=["quiet-and-confirmed", "just-under-the-limit", "one-kind-past-the-limit", "apiserver-gone",
        "unavailable-kind-ignored", "never-listed"])
def test_the_watch_behind_alert_fires_exactly_when_the_engine_calls_the_view_stale(
    telemetry: Telemetry, confirmed: dict[str, float], unavailable: tuple[str, ...], unsynced: tuple[str, ...],
    stale: set[str],
) -> None:
    """RoutewardenWatchBehind, evaluated on a scrape, and the engine's verdict share one definition of stale."""
    from webhook.engine import decide
    from webhook.offline import synthesize_request
    from webhook.policy.loader import load_documents

    cluster = [d for d in yaml.safe_load_all((REPO / "tests/scenarios/_shared/cluster.yaml").read_text()) if d]
    policies = load_documents([("p.yaml", STALE_AFTER_60)])
    state = ClusterState(expected_kinds=KINDS)
    for obj in cluster:
        state.apply(obj["kind"], obj)
    now = time.monotonic()
    for kind, age in confirmed.items():
        if kind in unavailable:
            state.mark_unavailable(kind, "not served")
        elif kind not in unsynced:
            state.mark_synced(kind)
        state.mark_alive(kind, at=now - age)
    runtime = Runtime(policies=PolicyStore(initial=policies), state=state)
    telemetry.watch_state(state, max_age=runtime.view_max_age)
    refused = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
               "metadata": {"name": "r", "namespace": "cherries"},
               "spec": {"parentRefs": [{"name": "shared", "namespace": "infra"}], "hostnames": ["c.example.com"]}}
    decision = decide(synthesize_request(refused), policies, state, now=now)
    engine_stale = decision.allowed and any("cluster view" in w for w in decision.warnings)
    assert engine_stale or decision.reason == "NotAllowedByListeners", decision
    assert firing("RoutewardenWatchBehind", samples(telemetry)) == stale
    assert engine_stale is bool(stale)


def test_without_a_policy_limit_the_alert_waits_for_three_missed_confirmations(telemetry: Telemetry) -> None:
    """No staleState.maxAgeSeconds anywhere: the limit is three confirmation intervals (15 minutes by default)."""
    state = ClusterState(expected_kinds=["Gateway", "HTTPRoute"])
    now = time.monotonic()
    for kind, age in (("Gateway", 800), ("HTTPRoute", 1000)):
        state.mark_synced(kind)
        state.mark_alive(kind, at=now - age)
    telemetry.watch_state(state, max_age=Runtime(policies=PolicyStore(), state=state).view_max_age)
    assert value(telemetry, "routewarden_cache_max_age_seconds") == 900
    assert firing("RoutewardenWatchBehind", samples(telemetry)) == {"HTTPRoute"}


@pytest.mark.parametrize(("synced", "unavailable", "fires"), [
    (False, False, True), (True, False, False), (False, True, False),
], ids=["served-but-never-listed", "listed", "unavailable"])
def test_the_cache_stale_alert_names_a_served_kind_that_has_not_been_listed(
    telemetry: Telemetry, synced: bool, unavailable: bool, fires: bool,
) -> None:
    """RoutewardenCacheStale: listed never, for 15 minutes, though the kind is served."""
    state = ClusterState(expected_kinds=["HTTPRoute"])
    if synced:
        state.mark_synced("HTTPRoute")
    if unavailable:
        state.mark_unavailable("HTTPRoute", "forbidden")
    state.mark_alive("HTTPRoute", at=time.monotonic() - 1000)
    telemetry.watch_state(state)
    assert firing("RoutewardenCacheStale", samples(telemetry)) == ({"HTTPRoute"} if fires else set())


def test_every_dashboard_query_parses_and_uses_only_metrics_we_export() -> None:
    """The dashboard's queries name exported series and cover requests, latency, cache, reloads and certs."""
    exported = _exported_names()
    used: set[str] = set()
    for expr in _dashboard_exprs():
        names = _selectors(expr)
        assert names <= exported, (expr, names - exported)
        used |= names
    assert {"routewarden_admission_requests_total", "routewarden_violations_total",
            "routewarden_admission_duration_seconds_bucket", "routewarden_cache_confirmed_age_seconds",
            "routewarden_cache_max_age_seconds", "routewarden_cache_synced", "routewarden_policy_reloads_total",
            "routewarden_certificate_expiry_timestamp_seconds"} <= used


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_the_observability_kustomization_builds_a_rule_and_a_dashboard_configmap() -> None:
    """kubectl kustomize renders the scrape config, the alerts and the dashboard ConfigMap for Grafana."""
    out = subprocess.run(["kubectl", "kustomize", str(OBSERVABILITY)], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    documents = {d["kind"]: d for d in yaml.safe_load_all(out)}
    assert set(documents) == {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    assert documents["ServiceMonitor"]["spec"]["endpoints"][0]["path"] == "/metrics"
    config_map = documents["ConfigMap"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["routewarden.json"])["uid"] == "routewarden"


def test_the_busy_fixture_really_fills_every_family() -> None:
    """Guards the two tests above: every metric family the code defines has samples after busy()."""
    telemetry = Telemetry()
    busy(telemetry)
    families = {f.name: f for f in text_string_to_metric_families(telemetry.metrics()[0].decode())
                if not f.name.endswith("_created")}  # present unless setup() turned them off
    assert set(families) == {
        "routewarden_admission_requests", "routewarden_admission_duration_seconds", "routewarden_violations",
        "routewarden_patches", "routewarden_review_rejected", "routewarden_policy_reloads",
        "routewarden_exceptions_used",
        "routewarden_policy_last_reload_success_timestamp_seconds",
        "routewarden_certificate_expiry_timestamp_seconds", "routewarden_audit_violations",
        "routewarden_cache_synced", "routewarden_cache_objects", "routewarden_cache_last_event_age_seconds",
        "routewarden_cache_confirmed_age_seconds", "routewarden_cache_max_age_seconds",
        "routewarden_reconcile_applies", "routewarden_reconcile_conflicts", "routewarden_reconcile_errors",
        "routewarden_reconcile_queue_depth", "routewarden_reconcile_leader",
    }
    assert all(f.samples for f in families.values())


@pytest.mark.parametrize(
    ("mode", "result", "message", "level", "counter"),
    [
        ("on", "applied", "applied Service infra/svc", logging.INFO, "routewarden_reconcile_applies_total"),
        ("dry-run", "applied", "would apply Service infra/svc", logging.INFO, "routewarden_reconcile_applies_total"),
        ("on", "conflict", "conflict applying Service infra/svc", logging.WARNING,
         "routewarden_reconcile_conflicts_total"),
        ("on", "error", "failed applying Service infra/svc", logging.WARNING, "routewarden_reconcile_errors_total"),
    ],
)
def test_each_reconciler_apply_is_counted_by_mode_and_logged_in_the_decision_log(
    telemetry: Telemetry, decision_lines: Any, mode: str, result: str, message: str, level: int, counter: str
) -> None:
    """One decision log line per apply, naming the Service and the changed fields, and one count by mode."""
    telemetry.reconciled(mode=mode, result=result, namespace="infra", name="svc",
                         changes=["set metadata.annotations[external-dns.alpha.kubernetes.io/hostname]"])
    assert value(telemetry, counter, mode=mode) == 1
    [(got_level, line)] = decision_lines()
    doc = json.loads(line)
    assert (got_level, doc["message"], doc["webhook"], doc["reconcile"], doc["decision"]) == (
        level, message, "reconcile", mode, result)
    assert doc["changes"] == ["set metadata.annotations[external-dns.alpha.kubernetes.io/hostname]"]


def test_the_leader_and_queue_gauges_follow_the_reconciler(telemetry: Telemetry) -> None:
    """routewarden_reconcile_leader is 1 only while leading; the queue depth is what is waiting now."""
    assert value(telemetry, "routewarden_reconcile_leader") == 0
    telemetry.reconcile_leader(True)
    telemetry.reconcile_queue(7)
    assert value(telemetry, "routewarden_reconcile_leader") == 1
    assert value(telemetry, "routewarden_reconcile_queue_depth") == 7
    telemetry.reconcile_leader(False)
    assert value(telemetry, "routewarden_reconcile_leader") == 0

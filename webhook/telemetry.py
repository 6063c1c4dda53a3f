"""Telemetry: Prometheus metrics, OpenTelemetry traces and the decision log of one process.

Three outputs, each for a different reader:

* **metrics** in the Prometheus text format, from a :class:`~prometheus_client.CollectorRegistry`
  owned by the instance (dashboards and alerts, see ``deploy/observability/``);
* **one span per admission request** from an OpenTelemetry SDK ``TracerProvider`` owned by
  the instance. Spans are exported (OTLP over HTTP) only when the standard ``OTEL_*``
  variables ask for it; otherwise the tracer is a no-op, so unused tracing costs nothing;
* **one decision log line** per request on the ``routewarden.decision`` logger: allowed
  requests without findings at DEBUG, denials, warnings and audit findings at INFO.

Spans and logs carry kind, namespace, name, operation, user name and rule ids, never
object contents: whatever an object holds (a Secret's data, a token in an annotation)
does not leave through telemetry.

No globals: each :class:`Telemetry` has its own registry and provider, so tests can build
as many as they like. ``setup(set_global=True)`` also installs the provider as
OpenTelemetry's global one, for libraries instrumented against the global API.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from . import __version__
from .admission import AdmissionRequest
from .decision import Decision
from .logs import fields

log = logging.getLogger(__name__)
decision_log = logging.getLogger("routewarden.decision")

DecisionLabel = Literal["allowed", "denied", "error", "rejected"]

# Most decisions take well under a millisecond (an in-memory lookup); the apiserver's
# timeout is at most 30 s and ours is a few seconds. Buckets span both ends.
DURATION_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
UNKNOWN = "unknown"


class StateView(Protocol):
    """What the cache metrics read from :class:`webhook.state.store.ClusterState`."""

    @property
    def expected_kinds(self) -> frozenset[str]: ...

    def count(self, kind: str) -> int: ...

    def is_synced(self, kind: str) -> bool: ...

    def last_event_age(self, kind: str, now: float | None = None) -> float | None: ...

    def confirmed_age(self, kind: str, now: float | None = None) -> float: ...

    def unavailable(self) -> dict[str, str]: ...


# ---------------------------------------------------------------------------- metrics
class _Metrics:
    """Every metric routewarden exports, registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "routewarden_admission_requests", "Admission reviews answered, by outcome.",
            ["webhook", "kind", "operation", "decision", "dry_run"], registry=registry,
        )
        self.duration = Histogram(
            "routewarden_admission_duration_seconds", "Time to answer an admission review.",
            ["webhook", "kind"], buckets=DURATION_BUCKETS, registry=registry,
        )
        self.violations = Counter(
            "routewarden_violations", "Rule violations found at admission, by rule and mode.",
            ["rule", "mode"], registry=registry,
        )
        self.exceptions = Counter(
            "routewarden_exceptions_used", "Findings a TenancyException excepted at admission, by exception and rule.",
            ["exception", "rule"], registry=registry,
        )
        self.patches = Counter(
            "routewarden_patches", "Admission responses that carried a JSON Patch.",
            ["kind"], registry=registry,
        )
        self.rejected = Counter(
            "routewarden_review_rejected", "HTTP bodies that were not a usable AdmissionReview.",
            ["webhook", "status"], registry=registry,
        )
        self.reloads = Counter(
            "routewarden_policy_reloads", "Policy (re)loads, by result.", ["result"], registry=registry,
        )
        self.last_reload = Gauge(
            "routewarden_policy_last_reload_success_timestamp_seconds",
            "Unix time of the last successful policy load.", registry=registry,
        )
        self.cert_expiry = Gauge(
            "routewarden_certificate_expiry_timestamp_seconds",
            "Unix time at which the serving certificate expires.", registry=registry,
        )
        self.audit = Gauge(
            "routewarden_audit_violations", "Violations found by the last audit of the cluster.",
            ["rule", "mode", "namespace"], registry=registry,
        )
        self.reconcile_applies = Counter(
            "routewarden_reconcile_applies",
            "Server-side applies by the reconciler that changed a generated Service (mode dry-run: would have).",
            ["mode"], registry=registry,
        )
        self.reconcile_conflicts = Counter(
            "routewarden_reconcile_conflicts",
            "Reconciler applies refused because another field manager owns a value (not forced).",
            ["mode"], registry=registry,
        )
        self.reconcile_errors = Counter(
            "routewarden_reconcile_errors", "Reconciler reads or applies that failed otherwise.",
            ["mode"], registry=registry,
        )
        self.reconcile_queue = Gauge(
            "routewarden_reconcile_queue_depth", "Gateways and Services waiting for the reconciler.",
            registry=registry,
        )
        self.reconcile_leader = Gauge(
            "routewarden_reconcile_leader", "1 on the replica that holds the reconciler's Lease.",
            registry=registry,
        )
        # Series that alerts take rates of must exist before the first event.
        for result in ("success", "failure"):
            self.reloads.labels(result=result)
        for mode in ("dry-run", "on"):
            for counter in (self.reconcile_applies, self.reconcile_conflicts, self.reconcile_errors):
                counter.labels(mode=mode)


class _CacheCollector:
    """The cluster view's freshness, computed at scrape time from the live state."""

    def __init__(self) -> None:
        self.state: StateView | None = None
        self.max_age: Callable[[], float] | None = None

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        synced, objects, age, confirmed, max_age = families = self._families()
        state = self.state
        if state is None:
            return list(families)
        try:
            now = time.monotonic()
            unavailable = state.unavailable()
            for kind in sorted(state.expected_kinds):
                synced.add_metric([kind], 1.0 if state.is_synced(kind) else 0.0)
                objects.add_metric([kind], float(state.count(kind)))
                seconds = state.last_event_age(kind, now)
                if seconds is not None:
                    age.add_metric([kind], seconds)
                if kind not in unavailable:  # as for the engine: a kind that cannot be listed is not waited for
                    confirmed.add_metric([kind], state.confirmed_age(kind, now))
            if self.max_age is not None:
                max_age.add_metric([], self.max_age())
        except Exception:  # a scrape must not fail because the view changed under it
            log.exception("could not read the cluster view for cache metrics")
        return list(families)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("routewarden_cache_synced",
                              "1 when the kind has been listed and is watched.", labels=["kind"]),
            GaugeMetricFamily("routewarden_cache_objects", "Objects of the kind in the cluster view.",
                              labels=["kind"]),
            GaugeMetricFamily("routewarden_cache_last_event_age_seconds",
                              "Seconds since the last list or watch event for the kind.", labels=["kind"]),
            GaugeMetricFamily("routewarden_cache_confirmed_age_seconds",
                              "Seconds since the apiserver last confirmed the kind current (list, event, "
                              "bookmark or watch resume); a healthy watch, quiet or not, stays below one "
                              "confirmation interval.",
                              labels=["kind"]),
            GaugeMetricFamily("routewarden_cache_max_age_seconds",
                              "Confirmed age beyond which the view is stale: the smallest "
                              "staleState.maxAgeSeconds of the loaded policies (else three confirmation "
                              "intervals)."),
        )


# ---------------------------------------------------------------------------- tracing
def traces_exporter_names(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The span exporters the standard ``OTEL_*`` variables ask for (none by default).

    ``OTEL_TRACES_EXPORTER`` wins when set (``otlp``, ``console``, ``none``, or a comma
    list); otherwise an OTLP endpoint variable turns on ``otlp``. Unlike the SDK's own
    default, nothing is exported when no endpoint is given: a webhook must not try to
    reach a collector that nobody configured.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ()
    explicit = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if explicit:
        names = tuple(dict.fromkeys(n.strip() for n in explicit.split(",") if n.strip()))
        return () if "none" in names else names
    if environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return ("otlp",)
    return ()


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter | None:
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol != "http/protobuf":
        log.warning("OTLP protocol %r is not supported; traces are sent as http/protobuf "
                    "(point the endpoint at the collector's HTTP port, usually 4318)", protocol)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        log.error("traces are not exported: an OTLP endpoint is configured but "
                  "opentelemetry-exporter-otlp-proto-http is not installed "
                  "(install routewarden[otlp])")
        return None
    # The exporter reads the endpoint, headers, timeout and TLS settings from OTEL_* itself.
    return OTLPSpanExporter()


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter | None:
    if name == "otlp":
        return _otlp_exporter(environ)
    if name == "console":
        return ConsoleSpanExporter()
    log.warning("OTEL_TRACES_EXPORTER=%s is not supported (use otlp, console or none); ignored", name)
    return None


def _resource(service_name: str, environ: Mapping[str, str]) -> Resource:
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES; OTEL_SERVICE_NAME beats our default.
    return Resource.create({
        SERVICE_NAME: environ.get("OTEL_SERVICE_NAME") or service_name,
        SERVICE_VERSION: __version__,
    })


# ---------------------------------------------------------------------------- decisions
def decision_label(decision: Decision) -> DecisionLabel:
    """``allowed``, ``denied``, or ``error`` for a decision that reports a server fault."""
    if decision.allowed:
        return "allowed"
    return "error" if decision.code >= 500 else "denied"


def _request_fields(request: AdmissionRequest | None) -> dict[str, Any]:
    if request is None:
        return {"uid": "", "user": "", "kind": UNKNOWN, "namespace": "", "name": "",
                "operation": UNKNOWN, "dry_run": False}
    return {
        "uid": request.uid,
        "user": request.user.username,
        "kind": request.kind.kind,
        "namespace": request.namespace,
        "name": request.name,
        "operation": request.operation,
        "dry_run": request.dry_run,
    }


class AdmissionRecorder:
    """What a handler reports about one admission request; recorded when its ``with`` block ends.

    A plain context manager (not a generator one): it is entered for every review, and
    without a tracer it only reads the clock on the way in.
    """

    __slots__ = ("_headers", "_span", "_span_context", "_started", "_telemetry", "decision", "request", "request_id",
                 "webhook")

    def __init__(self, telemetry: Telemetry, *, webhook: str, request: AdmissionRequest | None,
                 request_id: str | None, headers: Mapping[str, str] | None = None) -> None:
        self._telemetry = telemetry
        self.webhook = webhook
        self.request = request
        self.request_id = request_id
        self.decision: Decision | None = None
        self._headers = headers
        self._started = 0.0
        self._span: trace.Span = trace.INVALID_SPAN
        self._span_context: contextlib.AbstractContextManager[trace.Span] | None = None

    def set_request(self, request: AdmissionRequest) -> None:
        """The request, when the block parsed it after opening the recorder."""
        self.request = request

    def finish(self, decision: Decision) -> None:
        """The answer sent back. Without it (or if the block raises) the outcome is ``error``."""
        self.decision = decision

    def __enter__(self) -> Self:
        telemetry = self._telemetry
        if telemetry.tracing:
            # Without a provider there is no span at all: a no-op span made current and
            # dropped costs more than the metrics.
            parent = telemetry._propagator.extract(self._headers) if self._headers is not None else None
            self._span_context = telemetry._tracer.start_as_current_span(
                f"admission.{self.webhook}", context=parent, kind=SpanKind.SERVER,
                record_exception=False, set_status_on_exception=False,
            )
            self._span = self._span_context.__enter__()
        self._started = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        seconds = time.perf_counter() - self._started
        if exc_type is not None:
            error: str | None = exc_type.__name__
        else:
            error = "NoDecision" if self.decision is None else None
        try:
            self._telemetry._record(self, self._span, seconds=seconds, error=error)
        finally:
            if self._span_context is not None:
                self._span_context.__exit__(exc_type, exc, tb)


class Telemetry:
    """Metrics, traces and decision logs for one webhook process."""

    def __init__(
        self,
        *,
        service_name: str = "routewarden",
        tracer_provider: TracerProvider | None = None,
        registry: CollectorRegistry | None = None,
        exporters: tuple[str, ...] = (),
    ) -> None:
        self.service_name = service_name
        self.registry = registry if registry is not None else CollectorRegistry()
        self._metrics = _Metrics(self.registry)
        self._bound: dict[tuple[str, str, str, str, bool], tuple[Any, Any]] = {}
        self._patches: dict[str, Any] = {}  # the patch counter's child per kind (every Service mutation)
        self._cache = _CacheCollector()
        self.registry.register(self._cache)
        self._provider = tracer_provider
        self._tracer: trace.Tracer = (
            tracer_provider.get_tracer("routewarden", __version__) if tracer_provider else trace.NoOpTracer()
        )
        self.exporters = exporters
        self._propagator = TraceContextTextMapPropagator()
        self._closed = False

    @classmethod
    def setup(
        cls,
        service_name: str = "routewarden",
        *,
        span_exporter: SpanExporter | None = None,
        span_processor: SpanProcessor | None = None,
        environ: Mapping[str, str] | None = None,
        set_global: bool = False,
        registry: CollectorRegistry | None = None,
        created_series: bool = False,
    ) -> Telemetry:
        """Build telemetry once at start, configured by the standard ``OTEL_*`` variables.

        ``span_exporter`` (exported synchronously, for tests) and ``span_processor`` are
        added to whatever the environment asks for. With neither and no exporter in the
        environment there is no TracerProvider at all.

        ``created_series=False`` drops the ``*_created`` gauge that prometheus-client adds
        beside every counter and histogram (it doubles the series Prometheus stores, and
        nothing here reads it). That switch is process-wide in prometheus-client.
        """
        env = os.environ if environ is None else environ
        if not created_series:
            disable_created_metrics()
        processors: list[SpanProcessor] = []
        names: list[str] = []
        if span_exporter is not None:
            processors.append(SimpleSpanProcessor(span_exporter))
            names.append(type(span_exporter).__name__)
        if span_processor is not None:
            processors.append(span_processor)
            names.append(type(span_processor).__name__)
        for name in traces_exporter_names(env):
            exporter = _exporter(name, env)
            if exporter is not None:
                processors.append(BatchSpanProcessor(exporter))
                names.append(type(exporter).__name__)
        provider: TracerProvider | None = None
        if processors:
            provider = TracerProvider(resource=_resource(service_name, env), shutdown_on_exit=False)
            for processor in processors:
                provider.add_span_processor(processor)
            if set_global:
                trace.set_tracer_provider(provider)
            log.info("tracing on: %s", ", ".join(names))
        return cls(service_name=service_name, tracer_provider=provider, registry=registry,
                   exporters=tuple(names))

    @property
    def tracing(self) -> bool:
        """Whether spans are recorded and exported anywhere."""
        return self._provider is not None

    # ------------------------------------------------------------------ admission
    def admission(
        self,
        *,
        webhook: str,
        request: AdmissionRequest | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AdmissionRecorder:
        """Time one admission request: ``with telemetry.admission(...) as recorder:``; its
        metrics, span and log line are written when the block ends.

        ``headers`` may carry a W3C ``traceparent`` (kube-apiserver sends one when its own
        tracing is on), making the span a child of the apiserver's.
        """
        return AdmissionRecorder(self, webhook=webhook, request=request, request_id=request_id, headers=headers)

    def _record(self, rec: AdmissionRecorder, span: trace.Span, *, seconds: float, error: str | None) -> None:
        decision = None if error else rec.decision
        label: DecisionLabel = "error" if decision is None else decision_label(decision)
        request = rec.request
        kind = request.kind.kind if request is not None else UNKNOWN
        requests, duration = self._admission_series(
            rec.webhook, kind, request.operation if request is not None else UNKNOWN, label,
            request.dry_run if request is not None else False)
        requests.inc()
        duration.observe(seconds)
        if decision is not None and (decision.violations or decision.exceptions or decision.patch):
            m = self._metrics
            for violation in decision.violations:
                m.violations.labels(rule=violation.rule, mode=str(violation.mode)).inc()
            for use in decision.exceptions:
                m.exceptions.labels(exception=use.exception, rule=use.rule).inc()
            if decision.allowed and decision.patch:
                patches = self._patches.get(kind)
                if patches is None:
                    patches = self._patches[kind] = m.patches.labels(kind=kind)
                patches.inc()
        recording = span.is_recording()
        level = self._level(decision)
        if not recording and not decision_log.isEnabledFor(level):
            return  # an allowed review at INFO: metrics only, no line to build
        rules = list(decision.rules) if decision is not None else []
        line = {
            "webhook": rec.webhook, **_request_fields(request), "decision": label, "rules": rules,
            "warnings": len(decision.warnings) if decision else 0,
            "exceptions": [f"{u.exception}:{u.rule}" for u in decision.exceptions] if decision else [],
            "patch_ops": len(decision.patch) if decision and decision.allowed else 0,
            "latency_ms": round(seconds * 1000, 3),
        }
        if rec.request_id:
            line["request_id"] = rec.request_id
        if decision is not None and not decision.allowed:
            line["reason"] = decision.reason
        if error:
            line["error"] = error
        if recording:
            self._annotate(span, line, error=error)
            line["trace_id"] = format(span.get_span_context().trace_id, "032x")
        self._log(line, level)

    def _admission_series(self, webhook: str, kind: str, operation: str, decision: str,
                          dry_run: bool) -> tuple[Any, Any]:
        """The request counter and duration histogram children of one outcome, bound on first
        use: these series are never removed, and ``labels()`` with prometheus-client's
        validation is a measurable part of a review."""
        key = (webhook, kind, operation, decision, dry_run)
        bound = self._bound.get(key)
        if bound is None:
            m = self._metrics
            bound = self._bound[key] = (m.requests.labels(webhook, kind, operation, decision, "true" if dry_run else "false"),
                                        m.duration.labels(webhook, kind))
        return bound

    @staticmethod
    def _annotate(span: trace.Span, line: Mapping[str, Any], *, error: str | None) -> None:
        span.set_attributes({
            "k8s.resource.kind": line["kind"],
            "k8s.namespace.name": line["namespace"],
            "k8s.object.name": line["name"],
            "admission.webhook": line["webhook"],
            "admission.operation": line["operation"],
            "admission.dry_run": line["dry_run"],
            "admission.decision": line["decision"],
            "admission.rules": line["rules"],
            "admission.uid": line["uid"],
            "admission.warnings": line["warnings"],
            "admission.patch_ops": line["patch_ops"],
        })
        if "request_id" in line:
            span.set_attribute("http.request_id", line["request_id"])
        if error:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))

    @staticmethod
    def _level(decision: Decision | None) -> int:
        if decision is None:
            return logging.ERROR
        if not decision.allowed or decision.violations or decision.warnings or decision.exceptions:
            return logging.INFO
        return logging.DEBUG

    @staticmethod
    def _log(line: dict[str, Any], level: int) -> None:
        if not decision_log.isEnabledFor(level):
            return
        where = f"{line['namespace']}/{line['name']}" if line["namespace"] else line["name"]
        decision_log.log(level, "%s %s %s", line["decision"], line["kind"], where, extra=fields(**line))

    # ------------------------------------------------------------------ other events
    def review_rejected(self, *, webhook: str, status: int, reason: str) -> None:
        """A body that is not a usable AdmissionReview (answered with HTTP ``status``).

        Counted only: the caller logs it, with the details it has (uid, the full reason).
        """
        self._metrics.rejected.labels(webhook=webhook, status=str(status)).inc()
        self._admission_series(webhook, UNKNOWN, UNKNOWN, "rejected", False)[0].inc()

    def policy_reloaded(self, *, ok: bool) -> None:
        self._metrics.reloads.labels(result="success" if ok else "failure").inc()
        if ok:
            self._metrics.last_reload.set(time.time())

    def certificate_expiry(self, not_after_epoch: float) -> None:
        """The serving certificate's notAfter, as Unix time (call again on rotation)."""
        self._metrics.cert_expiry.set(not_after_epoch)

    def audit_results(self, counts: Mapping[tuple[str, ...], int]) -> None:
        """Replace the audit gauge with ``{(rule, mode[, namespace]): count}`` from the last audit."""
        gauge = self._metrics.audit
        gauge.clear()
        for key, count in counts.items():
            rule, mode, *rest = key
            gauge.labels(rule=rule, mode=str(mode), namespace=rest[0] if rest else "").set(count)

    def reconciled(self, *, mode: str, result: str, namespace: str, name: str, **details: Any) -> None:
        """One apply of the background reconciler: counted, and a decision log line.

        ``result`` is ``applied`` (dry-run: would apply), ``conflict`` or ``error``. The
        line names the fields (paths), never their values.
        """
        m = self._metrics
        counter = {"applied": m.reconcile_applies, "conflict": m.reconcile_conflicts}.get(result, m.reconcile_errors)
        counter.labels(mode=mode).inc()
        verb = {"applied": "would apply" if mode == "dry-run" else "applied",
                "conflict": "conflict applying", "error": "failed applying"}.get(result, result)
        level = logging.INFO if result == "applied" else logging.WARNING
        decision_log.log(level, "%s Service %s/%s", verb, namespace, name, extra=fields(
            webhook="reconcile", kind="Service", namespace=namespace, name=name, reconcile=mode, decision=result,
            **details))

    def reconcile_queue(self, depth: int) -> None:
        self._metrics.reconcile_queue.set(depth)

    def reconcile_leader(self, leader: bool) -> None:
        self._metrics.reconcile_leader.set(1 if leader else 0)

    def watch_state(self, state: StateView, *, max_age: Callable[[], float] | None = None) -> None:
        """Export the cache metrics of ``state`` and the staleness limit ``max_age()`` (read at
        every scrape)."""
        self._cache.state = state
        self._cache.max_age = max_age

    def metrics(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition and its content type (OpenMetrics when ``accept`` asks for it)."""
        if accept:
            encoder, content_type = choose_encoder(accept)
            return encoder(self.registry), content_type
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def shutdown(self) -> None:
        """Flush and stop span exporters. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._provider is not None:
            self._provider.shutdown()

"""Gateway API semantics, as the specification defines them. Pure functions, no I/O.

Everything a rule needs to predict what a Gateway controller will write into a
route's status lives here:

* typed views of Gateways (and ListenerSets), routes of every kind and version, and
  ReferenceGrants, with the defaults the API applies (parentRef group/kind/namespace,
  backendRef group/kind, ``allowedRoutes.namespaces.from: Same``);
* listener selection by ``sectionName`` and ``port`` (``NoMatchingParent``);
* ``allowedRoutes`` evaluation, namespaces and kinds (``NotAllowedByListeners``);
* hostname matching and intersection with wildcards (``NoMatchingListenerHostname``);
* ReferenceGrant matching (``RefNotPermitted``);
* Kubernetes label selector semantics.

Hostnames: a wildcard label ``*.`` is a suffix match on whole labels: the spec says
``*.example.com`` matches ``test.example.com`` *and* ``foo.test.example.com`` but not
``example.com``. Hostnames are compared case-insensitively (DNS names are).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

GROUP = "gateway.networking.k8s.io"
CORE_GROUP = ""
NAME_LABEL = "kubernetes.io/metadata.name"

ROUTE_KINDS = frozenset({"HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"})
# Route kinds whose hostnames take part in listener matching.
HOSTNAME_ROUTE_KINDS = frozenset({"HTTPRoute", "GRPCRoute", "TLSRoute"})

# The route kinds a listener accepts when ``allowedRoutes.kinds`` is empty, by protocol.
# The spec leaves this to implementations for extended protocols; these are the kinds
# every conformant implementation accepts for the core protocols.
DEFAULT_KINDS_BY_PROTOCOL: Mapping[str, frozenset[str]] = {
    "HTTP": frozenset({"HTTPRoute", "GRPCRoute"}),
    "HTTPS": frozenset({"HTTPRoute", "GRPCRoute"}),
    "TLS": frozenset({"TLSRoute"}),
    "TCP": frozenset({"TCPRoute"}),
    "UDP": frozenset({"UDPRoute"}),
}


# The same as (group, kind) pairs, built once (a listener is asked on every attachment check).
_DEFAULT_ACCEPTED_KINDS: Mapping[str, frozenset[tuple[str, str]]] = {
    protocol: frozenset((GROUP, k) for k in kinds) for protocol, kinds in DEFAULT_KINDS_BY_PROTOCOL.items()
}


class MalformedObject(ValueError):
    """A field does not have the type the API defines (only possible before schema validation)."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field = field_path


# --------------------------------------------------------------------------- reading helpers
def _map(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedObject(where, f"expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedObject(where, f"expected a list, got {type(value).__name__}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedObject(where, f"expected a string, got {type(value).__name__}")
    return value


def _str(value: Any, where: str) -> str:
    """A list item that must be a string (``null`` is a wrong type there, not an omission)."""
    if not isinstance(value, str):
        raise MalformedObject(where, f"expected a string, got {type(value).__name__}")
    return value


def _opt_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedObject(where, f"expected an integer, got {type(value).__name__}")
    return value


def _str_map(value: Any, where: str) -> dict[str, str]:
    m = _map(value, where)
    for k, v in m.items():
        if not isinstance(v, str):
            raise MalformedObject(f"{where}.{k}", f"expected a string, got {type(v).__name__}")
    return dict(m)


@dataclass(frozen=True, slots=True)
class Meta:
    namespace: str
    name: str
    uid: str = ""
    creation_timestamp: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], *, default_namespace: str = "") -> Meta:
        meta = _map(obj.get("metadata"), "metadata")
        return cls(
            namespace=_opt_str(meta.get("namespace"), "metadata.namespace") or default_namespace,
            name=_opt_str(meta.get("name"), "metadata.name") or "",
            uid=_opt_str(meta.get("uid"), "metadata.uid") or "",
            creation_timestamp=_opt_str(meta.get("creationTimestamp"), "metadata.creationTimestamp") or "",
            labels=_str_map(meta.get("labels"), "metadata.labels"),
            annotations=_str_map(meta.get("annotations"), "metadata.annotations"),
        )


# --------------------------------------------------------------------------- label selectors
# Label syntax as apimachinery validates it (validation.IsQualifiedName / IsValidLabelValue):
# ``metav1.LabelSelectorAsSelector`` refuses a selector with a bad key or value, so such a
# selector never selects anything and is reported as malformed rather than evaluated.
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _check_label_key(key: str, where: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in prefix or (key.count("/") == 1 and not (len(prefix) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(prefix))):
        raise MalformedObject(where, f"invalid label key {key!r}: bad prefix")
    if not (len(name) <= 63 and _LABEL_NAME.fullmatch(name)):
        raise MalformedObject(where, f"invalid label key {key!r}")


def _check_label_value(value: str, where: str) -> None:
    if value and not (len(value) <= 63 and _LABEL_NAME.fullmatch(value)):
        raise MalformedObject(where, f"invalid label value {value!r}")


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """``metav1.LabelSelector`` with Kubernetes semantics (requirements are ANDed)."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[tuple[str, str, frozenset[str]], ...] = ()

    @classmethod
    def from_dict(cls, value: Any, where: str = "selector") -> LabelSelector:
        m = _map(value, where)
        labels = _str_map(m.get("matchLabels"), f"{where}.matchLabels")
        for k, v in labels.items():
            _check_label_key(k, f"{where}.matchLabels")
            _check_label_value(v, f"{where}.matchLabels.{k}")
        exprs = []
        for i, e in enumerate(_list(m.get("matchExpressions"), f"{where}.matchExpressions")):
            at = f"{where}.matchExpressions[{i}]"
            e = _map(e, at)
            key = _opt_str(e.get("key"), f"{at}.key") or ""
            op = _opt_str(e.get("operator"), f"{at}.operator") or ""
            values = _list(e.get("values"), f"{at}.values")
            if not all(isinstance(v, str) for v in values):
                raise MalformedObject(f"{at}.values", "expected a list of strings")
            if op in ("In", "NotIn") and not values:
                raise MalformedObject(f"{at}.values", f"operator {op} needs at least one value")
            if op in ("Exists", "DoesNotExist") and values:
                raise MalformedObject(f"{at}.values", f"operator {op} takes no values")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                raise MalformedObject(f"{at}.operator", f"unknown operator {op!r}")
            _check_label_key(key, f"{at}.key")
            for v in values:
                _check_label_value(v, f"{at}.values")
            exprs.append((key, op, frozenset(values)))
        return cls(tuple(sorted(labels.items())), tuple(exprs))

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        for key, op, values in self.match_expressions:
            present = key in labels
            if op == "In" and not (present and labels[key] in values):
                return False
            if op == "NotIn" and present and labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(k for k, _ in self.match_labels) | frozenset(k for k, _, _ in self.match_expressions)

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels]
        for key, op, values in self.match_expressions:
            if op in ("In", "NotIn"):
                parts.append(f"{key} {op.lower()} ({','.join(sorted(values))})")
            elif op == "Exists":
                parts.append(key)
            else:
                parts.append(f"!{key}")
        return ",".join(parts) or "<everything>"


# --------------------------------------------------------------------------- hostnames
@functools.lru_cache(maxsize=8192)
def normalize_hostname(hostname: str) -> str:
    # Cached: policy patterns, listener hostnames and a review's own hostnames are
    # normalized again by every match; bounded, since hostnames come from user input.
    return hostname.strip().lower().rstrip(".")


def is_wildcard(hostname: str) -> bool:
    return hostname.startswith("*.")


def hostname_matches(pattern: str, hostname: str) -> bool:
    """Whether ``hostname`` (possibly itself a wildcard) falls under ``pattern``.

    ``*.example.com`` covers ``a.example.com``, ``a.b.example.com`` and
    ``*.a.example.com``, but not ``example.com``. A plain pattern covers only itself.
    """
    return _covers(normalize_hostname(pattern), normalize_hostname(hostname))


def _covers(pattern: str, hostname: str) -> bool:
    """:func:`hostname_matches` for names normalized already."""
    if pattern == hostname:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.com"
        return hostname.endswith(suffix) and len(hostname) > len(suffix)
    return False


def intersect_hostname(listener: str | None, route: str) -> str | None:
    """The hostname a route hostname yields on a listener, or None when they do not intersect.

    A route wildcard over a more specific listener hostname yields the listener's
    hostname (``*.example.com`` on listener ``foo.example.com`` serves ``foo.example.com``).
    """
    route = normalize_hostname(route)
    if listener is None:
        return route
    listener = normalize_hostname(listener)
    if _covers(listener, route):
        return route
    if _covers(route, listener):
        return listener
    return None


def intersect_hostnames(listener: str | None, routes: Iterable[str]) -> tuple[str, ...]:
    """Hostnames a route serves on a listener. A route without hostnames takes the listener's.

    Returns ``("*",)`` when neither side names a hostname (the route catches everything).
    """
    routes = tuple(routes)
    if not routes:
        return (normalize_hostname(listener),) if listener else ("*",)
    out = []
    for r in routes:
        h = intersect_hostname(listener, r)
        if h is not None and h not in out:
            out.append(h)
    return tuple(out)


# --------------------------------------------------------------------------- references
@dataclass(frozen=True, slots=True)
class ParentRef:
    group: str
    kind: str
    namespace: str
    name: str
    section_name: str | None = None
    port: int | None = None
    field: str = ""

    @property
    def gateway_key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def is_gateway(self) -> bool:
        return self.group == GROUP and self.kind == "Gateway"

    @property
    def is_listenerset(self) -> bool:
        return self.group == GROUP and self.kind == "ListenerSet"

    def describe(self) -> str:
        text = f"{self.kind} {self.namespace}/{self.name}"
        if self.section_name:
            text += f" sectionName {self.section_name}"
        if self.port is not None:
            text += f" port {self.port}"
        return text


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A reference to another object (a backendRef, certificateRef, ...) from ``from_kind``."""

    group: str
    kind: str
    namespace: str
    name: str
    field: str = ""

    def describe(self) -> str:
        kind = self.kind if not self.group else f"{self.kind}.{self.group}"
        return f"{kind} {self.namespace}/{self.name}"


def _field_str(m: Mapping[str, Any], key: str, where: str) -> str | None:
    """``m[key]`` as an optional string. The error's path ``where.key`` is built only for
    an error: references are parsed on every review, and their paths are rarely needed."""
    value = m.get(key)
    if value is None or isinstance(value, str):
        return value
    return _opt_str(value, f"{where}.{key}")


def parse_parent_ref(value: Any, *, route_namespace: str, where: str) -> ParentRef:
    m = value if isinstance(value, dict) else _map(value, where)
    name = _field_str(m, "name", where)
    if not name:
        raise MalformedObject(f"{where}.name", "is required")
    group = _field_str(m, "group", where)
    port = m.get("port")
    return ParentRef(
        group=GROUP if group is None else group,
        kind=_field_str(m, "kind", where) or "Gateway",
        namespace=_field_str(m, "namespace", where) or route_namespace,
        name=name,
        section_name=_field_str(m, "sectionName", where) or None,
        port=None if port is None else _opt_int(port, f"{where}.port"),
        field=where,
    )


def parse_object_ref(
    value: Any, *, default_namespace: str, default_kind: str, default_group: str = CORE_GROUP, where: str
) -> ObjectRef:
    m = value if isinstance(value, dict) else _map(value, where)
    name = _field_str(m, "name", where)
    if not name:
        raise MalformedObject(f"{where}.name", "is required")
    group = _field_str(m, "group", where)
    kind = _field_str(m, "kind", where)
    namespace = _field_str(m, "namespace", where)
    return ObjectRef(
        group=default_group if group is None else group,
        kind=kind or default_kind,
        namespace=namespace or default_namespace,
        name=name,
        field=where,
    )


# --------------------------------------------------------------------------- routes
@dataclass(frozen=True, slots=True)
class Route:
    kind: str
    meta: Meta
    hostnames: tuple[str, ...]
    parent_refs: tuple[ParentRef, ...]
    backend_refs: tuple[ObjectRef, ...]

    @property
    def namespace(self) -> str:
        return self.meta.namespace

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.meta.namespace, self.meta.name)

    def describe(self) -> str:
        return f"{self.kind} {self.meta.namespace}/{self.meta.name}"

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], *, kind: str | None = None, namespace: str = "") -> Route:
        """Parse any route kind in any served version (v1, v1beta1, v1alpha2, v1alpha3)."""
        kind = kind or _opt_str(obj.get("kind"), "kind") or ""
        meta = Meta.from_object(obj, default_namespace=namespace)
        spec = _map(obj.get("spec"), "spec")
        hostnames = tuple(
            normalize_hostname(h if isinstance(h, str) else _str(h, f"spec.hostnames[{i}]"))
            for i, h in enumerate(_list(spec.get("hostnames"), "spec.hostnames"))
        )
        parents = tuple(
            parse_parent_ref(p, route_namespace=meta.namespace, where=f"spec.parentRefs[{i}]")
            for i, p in enumerate(_list(spec.get("parentRefs"), "spec.parentRefs"))
        )
        return cls(kind, meta, hostnames, parents, tuple(_route_backend_refs(spec, meta.namespace)))


def _mirror_ref(filters: Any, *, namespace: str, where: str) -> Iterator[ObjectRef]:
    """backendRefs inside filters: requestMirror and (experimental channel) externalAuth.

    Both are BackendObjectReferences, and "All cross-namespace references in Gateway API
    (with the exception of cross-namespace Gateway-route attachment) require a ReferenceGrant."
    """
    for j, f in enumerate(filters if isinstance(filters, list) else _list(filters, where)):
        f = f if isinstance(f, dict) else _map(f, f"{where}[{j}]")
        for filter_field in ("requestMirror", "externalAuth"):
            config = f.get(filter_field)
            if config is not None:
                at = f"{where}[{j}].{filter_field}.backendRef"
                ref = _map(config, f"{where}[{j}].{filter_field}").get("backendRef")
                if ref is not None:
                    yield parse_object_ref(ref, default_namespace=namespace, default_kind="Service", where=at)


def _route_backend_refs(spec: Mapping[str, Any], namespace: str) -> list[ObjectRef]:
    # Paths of the parts that are well formed are only built when they are kept (a ref's
    # field) or reported (an error): this runs on every route review.
    out: list[ObjectRef] = []
    for i, rule in enumerate(_list(spec.get("rules"), "spec.rules")):
        rule = rule if isinstance(rule, dict) else _map(rule, f"spec.rules[{i}]")
        refs = rule.get("backendRefs")
        if refs is not None:
            for k, ref in enumerate(refs if isinstance(refs, list) else _list(refs, f"spec.rules[{i}].backendRefs")):
                at = f"spec.rules[{i}].backendRefs[{k}]"
                out.append(parse_object_ref(ref, default_namespace=namespace, default_kind="Service", where=at))
                filters = _map(ref, at).get("filters")
                if filters is not None:
                    out.extend(_mirror_ref(filters, namespace=namespace, where=f"{at}.filters"))
        filters = rule.get("filters")
        if filters is not None:
            out.extend(_mirror_ref(filters, namespace=namespace, where=f"spec.rules[{i}].filters"))
    return out


# --------------------------------------------------------------------------- gateways
@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    port: int | None
    protocol: str
    hostname: str | None
    allowed_from: str = "Same"
    allowed_selector: LabelSelector | None = None
    allowed_kinds: tuple[tuple[str, str], ...] = ()  # (group, kind); empty: the protocol's defaults
    tls_mode: str | None = None
    certificate_refs: tuple[ObjectRef, ...] = ()
    field: str = ""
    # Set for listeners that come from a ListenerSet: (namespace, name) of the set.
    listener_set: tuple[str, str] | None = None

    def accepted_kinds(self) -> frozenset[tuple[str, str]]:
        if self.allowed_kinds:
            return frozenset(self.allowed_kinds)
        return _DEFAULT_ACCEPTED_KINDS.get(self.protocol, frozenset())

    def describe(self) -> str:
        text = f"listener {self.name!r} ({self.protocol}"
        if self.port is not None:
            text += f" :{self.port}"
        if self.hostname:
            text += f" {self.hostname}"
        return text + ")"


def parse_listener(
    value: Any, *, owner_namespace: str, where: str, listener_set: tuple[str, str] | None = None
) -> Listener:
    m = _map(value, where)
    allowed = _map(m.get("allowedRoutes"), f"{where}.allowedRoutes")
    namespaces = _map(allowed.get("namespaces"), f"{where}.allowedRoutes.namespaces")
    allowed_from = _opt_str(namespaces.get("from"), f"{where}.allowedRoutes.namespaces.from") or "Same"
    selector = None
    if "selector" in namespaces and namespaces["selector"] is not None:
        selector = LabelSelector.from_dict(namespaces["selector"], f"{where}.allowedRoutes.namespaces.selector")
    kinds = []
    for i, k in enumerate(_list(allowed.get("kinds"), f"{where}.allowedRoutes.kinds")):
        at = f"{where}.allowedRoutes.kinds[{i}]"
        k = _map(k, at)
        group = _opt_str(k.get("group"), f"{at}.group")
        kinds.append((GROUP if group is None else group, _opt_str(k.get("kind"), f"{at}.kind") or ""))
    tls = _map(m.get("tls"), f"{where}.tls")
    certs = tuple(
        parse_object_ref(
            c, default_namespace=owner_namespace, default_kind="Secret", where=f"{where}.tls.certificateRefs[{i}]"
        )
        for i, c in enumerate(_list(tls.get("certificateRefs"), f"{where}.tls.certificateRefs"))
    )
    hostname = _opt_str(m.get("hostname"), f"{where}.hostname")
    return Listener(
        name=_opt_str(m.get("name"), f"{where}.name") or "",
        port=_opt_int(m.get("port"), f"{where}.port"),
        protocol=_opt_str(m.get("protocol"), f"{where}.protocol") or "",
        hostname=normalize_hostname(hostname) if hostname else None,
        allowed_from=allowed_from,
        allowed_selector=selector,
        allowed_kinds=tuple(kinds),
        tls_mode=(_opt_str(tls.get("mode"), f"{where}.tls.mode") or "Terminate") if tls else None,
        certificate_refs=certs,
        field=where,
        listener_set=listener_set,
    )


@dataclass(frozen=True, slots=True)
class Gateway:
    meta: Meta
    class_name: str
    listeners: tuple[Listener, ...]
    infrastructure_labels: Mapping[str, str] = field(default_factory=dict)
    infrastructure_annotations: Mapping[str, str] = field(default_factory=dict)
    allowed_listeners_from: str = "None"
    allowed_listeners_selector: LabelSelector | None = None
    other_refs: tuple[ObjectRef, ...] = ()  # TLS refs outside listeners (client/CA certificates)

    @property
    def namespace(self) -> str:
        return self.meta.namespace

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def key(self) -> tuple[str, str]:
        return (self.meta.namespace, self.meta.name)

    def describe(self) -> str:
        return f"Gateway {self.meta.namespace}/{self.meta.name}"

    @property
    def certificate_refs(self) -> tuple[ObjectRef, ...]:
        return tuple(ref for listener in self.listeners for ref in listener.certificate_refs) + self.other_refs

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], *, namespace: str = "") -> Gateway:
        meta = Meta.from_object(obj, default_namespace=namespace)
        spec = _map(obj.get("spec"), "spec")
        listeners = tuple(
            parse_listener(item, owner_namespace=meta.namespace, where=f"spec.listeners[{i}]")
            for i, item in enumerate(_list(spec.get("listeners"), "spec.listeners"))
        )
        infra = _map(spec.get("infrastructure"), "spec.infrastructure")
        allowed = _map(
            _map(spec.get("allowedListeners"), "spec.allowedListeners").get("namespaces"),
            "spec.allowedListeners.namespaces",
        )
        selector = allowed.get("selector")
        return cls(
            meta=meta,
            class_name=_opt_str(spec.get("gatewayClassName"), "spec.gatewayClassName") or "",
            listeners=listeners,
            infrastructure_labels=_str_map(infra.get("labels"), "spec.infrastructure.labels"),
            infrastructure_annotations=_str_map(infra.get("annotations"), "spec.infrastructure.annotations"),
            allowed_listeners_from=_opt_str(allowed.get("from"), "spec.allowedListeners.namespaces.from") or "None",
            allowed_listeners_selector=(
                LabelSelector.from_dict(selector, "spec.allowedListeners.namespaces.selector")
                if selector is not None
                else None
            ),
            other_refs=tuple(_gateway_tls_refs(_map(spec.get("tls"), "spec.tls"), meta.namespace)),
        )


def _gateway_tls_refs(tls: Mapping[str, Any], namespace: str) -> Iterator[ObjectRef]:
    backend = _map(tls.get("backend"), "spec.tls.backend")
    if backend.get("clientCertificateRef") is not None:
        yield parse_object_ref(
            backend["clientCertificateRef"],
            default_namespace=namespace,
            default_kind="Secret",
            where="spec.tls.backend.clientCertificateRef",
        )
    frontend = _map(tls.get("frontend"), "spec.tls.frontend")
    validations = [("spec.tls.frontend.default.validation", _map(frontend.get("default"), "spec.tls.frontend.default").get("validation"))]
    for i, per_port in enumerate(_list(frontend.get("perPort"), "spec.tls.frontend.perPort")):
        at = f"spec.tls.frontend.perPort[{i}]"
        validations.append((f"{at}.tls.validation", _map(_map(per_port, at).get("tls"), f"{at}.tls").get("validation")))
    for where, validation in validations:
        refs = _map(validation, where).get("caCertificateRefs")
        for j, ref in enumerate(_list(refs, f"{where}.caCertificateRefs")):
            yield parse_object_ref(
                ref, default_namespace=namespace, default_kind="ConfigMap", where=f"{where}.caCertificateRefs[{j}]"
            )


def listenerset_parent(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """The Gateway a ListenerSet attaches to, as (namespace, name)."""
    try:
        meta = Meta.from_object(obj)
        ref = _map(_map(obj.get("spec"), "spec").get("parentRef"), "spec.parentRef")
        name = _opt_str(ref.get("name"), "spec.parentRef.name")
        if not name:
            return None
        # group and kind default to a Gateway, but the schema lets them name anything else;
        # such a ListenerSet has no Gateway parent.
        group = _opt_str(ref.get("group"), "spec.parentRef.group")
        if (GROUP if group is None else group, _opt_str(ref.get("kind"), "spec.parentRef.kind") or "Gateway") != (
            GROUP,
            "Gateway",
        ):
            return None
        return (_opt_str(ref.get("namespace"), "spec.parentRef.namespace") or meta.namespace, name)
    except MalformedObject:
        return None


def listenerset_listeners(obj: Mapping[str, Any]) -> tuple[Listener, ...]:
    meta = Meta.from_object(obj)
    spec = _map(obj.get("spec"), "spec")
    return tuple(
        parse_listener(
            item, owner_namespace=meta.namespace, where=f"spec.listeners[{i}]", listener_set=(meta.namespace, meta.name)
        )
        for i, item in enumerate(_list(spec.get("listeners"), "spec.listeners"))
    )


# --------------------------------------------------------------------------- grants
@dataclass(frozen=True, slots=True)
class ReferenceGrant:
    meta: Meta
    from_: tuple[tuple[str, str, str], ...]  # (group, kind, namespace)
    to: tuple[tuple[str, str, str | None], ...]  # (group, kind, name or None)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], *, namespace: str = "") -> ReferenceGrant:
        meta = Meta.from_object(obj, default_namespace=namespace)
        spec = _map(obj.get("spec"), "spec")
        froms = []
        for i, f in enumerate(_list(spec.get("from"), "spec.from")):
            at = f"spec.from[{i}]"
            f = _map(f, at)
            froms.append(
                (
                    _opt_str(f.get("group"), f"{at}.group") or "",
                    _opt_str(f.get("kind"), f"{at}.kind") or "",
                    _opt_str(f.get("namespace"), f"{at}.namespace") or "",
                )
            )
        tos = []
        for i, t in enumerate(_list(spec.get("to"), "spec.to")):
            at = f"spec.to[{i}]"
            t = _map(t, at)
            tos.append(
                (
                    _opt_str(t.get("group"), f"{at}.group") or "",
                    _opt_str(t.get("kind"), f"{at}.kind") or "",
                    _opt_str(t.get("name"), f"{at}.name") or None,
                )
            )
        return cls(meta, tuple(froms), tuple(tos))

    def permits(self, *, from_group: str, from_kind: str, from_namespace: str, to: ObjectRef) -> bool:
        """Whether this grant (living in ``to.namespace``) allows the reference."""
        if self.meta.namespace != to.namespace:
            return False
        if (from_group, from_kind, from_namespace) not in self.from_:
            return False
        return any(g == to.group and k == to.kind and (n is None or n == to.name) for g, k, n in self.to)

    def describe(self) -> str:
        return f"ReferenceGrant {self.meta.namespace}/{self.meta.name}"


def reference_permitted(
    grants: Iterable[ReferenceGrant], *, from_group: str, from_kind: str, from_namespace: str, to: ObjectRef
) -> ReferenceGrant | None | bool:
    """True for a same-namespace reference, the permitting grant, or None when not permitted."""
    if to.namespace == from_namespace:
        return True
    for grant in grants:
        if grant.permits(from_group=from_group, from_kind=from_kind, from_namespace=from_namespace, to=to):
            return grant
    return None


# --------------------------------------------------------------------------- attachment
def listeners_for_ref(listeners: Iterable[Listener], ref: ParentRef) -> tuple[Listener, ...]:
    """Listeners a parentRef selects: by sectionName and/or port; all when neither is set."""
    return tuple(
        listener
        for listener in listeners
        if (ref.section_name is None or listener.name == ref.section_name)
        and (ref.port is None or listener.port == ref.port)
    )


def gateway_admits_listenerset(
    gateway: Gateway, *, namespace: str, namespace_labels: Mapping[str, str] | None
) -> bool | None:
    """Whether ``spec.allowedListeners`` lets a ListenerSet in ``namespace`` attach (GEP-1713).

    The default is ``None``: a Gateway accepts no ListenerSet until it opts in. Returns
    None when only the (unknown) labels of the namespace could tell.
    """
    allowed = gateway.allowed_listeners_from
    if allowed == "All":
        return True
    if allowed == "Same":
        return namespace == gateway.namespace
    if allowed == "Selector" and gateway.allowed_listeners_selector is not None:
        selector = gateway.allowed_listeners_selector
        if namespace_labels is None:
            return selector.matches({NAME_LABEL: namespace}) if selector.keys <= {NAME_LABEL} else None
        return selector.matches(namespace_labels)
    return False


def listener_admits_namespace(
    listener: Listener, *, owner_namespace: str, route_namespace: str, namespace_labels: Mapping[str, str] | None
) -> bool | None:
    """Whether ``allowedRoutes.namespaces`` admits the route's namespace.

    Returns None when the answer depends on the labels of a namespace we do not know.
    ``owner_namespace`` is the namespace of the Gateway or ListenerSet holding the listener.
    """
    if listener.allowed_from == "All":
        return True
    if listener.allowed_from == "Same":
        return route_namespace == owner_namespace
    if listener.allowed_from == "Selector":
        if listener.allowed_selector is None:
            return False
        if namespace_labels is None:
            # kube-apiserver labels every namespace with its name, so a selector on that
            # label alone is decided even for a namespace the view does not hold.
            if listener.allowed_selector.keys <= {NAME_LABEL}:
                return listener.allowed_selector.matches({NAME_LABEL: route_namespace})
            return None
        return listener.allowed_selector.matches(namespace_labels)
    return False  # "None" or an unknown value admits nothing


def listener_admits_kind(listener: Listener, *, group: str, kind: str) -> bool:
    return (group, kind) in listener.accepted_kinds()


@dataclass(frozen=True, slots=True)
class ListenerVerdict:
    """How one listener treats one parentRef of a route (for ``explain`` and the rules)."""

    listener: Listener
    namespace_allowed: bool | None
    kind_allowed: bool
    hostnames: tuple[str, ...]

    @property
    def accepts(self) -> bool:
        return bool(self.namespace_allowed) and self.kind_allowed

    @property
    def attaches(self) -> bool:
        return self.accepts and bool(self.hostnames)


@dataclass(frozen=True, slots=True)
class Attachment:
    """What a controller would decide for one parentRef: reason None means Accepted."""

    ref: ParentRef
    verdicts: tuple[ListenerVerdict, ...]
    reason: str | None
    unknown_namespace: bool = False

    @property
    def hostnames(self) -> tuple[str, ...]:
        out: list[str] = []
        for v in self.verdicts:
            if v.attaches:
                out.extend(h for h in v.hostnames if h not in out)
        return tuple(out)


def evaluate_attachment(
    route: Route,
    ref: ParentRef,
    listeners: tuple[Listener, ...],
    *,
    owner_namespace: str,
    namespace_labels: Mapping[str, str] | None,
) -> Attachment:
    """Predict the ``Accepted`` condition a controller sets for one parentRef.

    Order follows the spec and the conformance suite: no listener selected by
    sectionName/port -> ``NoMatchingParent``; none admits the route's namespace or
    kind -> ``NotAllowedByListeners``; none has an intersecting hostname ->
    ``NoMatchingListenerHostname``.
    """
    selected = listeners_for_ref(listeners, ref)
    if not selected:
        return Attachment(ref, (), "NoMatchingParent")
    verdicts = []
    unknown = False
    for listener in selected:
        admitted = listener_admits_namespace(
            listener,
            owner_namespace=listener.listener_set[0] if listener.listener_set else owner_namespace,
            route_namespace=route.namespace,
            namespace_labels=namespace_labels,
        )
        unknown = unknown or admitted is None
        kind_ok = listener_admits_kind(listener, group=GROUP, kind=route.kind)
        if route.kind in HOSTNAME_ROUTE_KINDS:
            hostnames = intersect_hostnames(listener.hostname, route.hostnames)
        else:
            hostnames = (listener.hostname or "*",)
        verdicts.append(ListenerVerdict(listener, admitted, kind_ok, hostnames))
    verdicts_t = tuple(verdicts)
    if not any(v.accepts or (v.namespace_allowed is None and v.kind_allowed) for v in verdicts_t):
        return Attachment(ref, verdicts_t, "NotAllowedByListeners", unknown)
    if not any(v.hostnames for v in verdicts_t if v.accepts or v.namespace_allowed is None):
        return Attachment(ref, verdicts_t, "NoMatchingListenerHostname", unknown)
    if unknown and not any(v.accepts for v in verdicts_t):
        # Depends on the labels of a namespace the view does not hold yet.
        return Attachment(ref, verdicts_t, None, True)
    return Attachment(ref, verdicts_t, None, unknown)

"""Gateways, ListenerSets and their listeners (``allowedRoutes``, TLS, ``allowedListeners``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .core import (
    _DEFAULT_ACCEPTED_KINDS,
    GROUP,
    HOSTNAME_PROTOCOLS,
    MalformedObject,
    Meta,
    _list,
    _map,
    _opt_int,
    _opt_str,
    _str_map,
)
from .hostnames import normalize_hostname
from .references import ObjectRef, parse_object_ref
from .selectors import LabelSelector


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
        """The (group, kind) pairs the listener accepts: ``allowedRoutes.kinds``, else the
        core protocol's kinds. Empty for an implementation-specific protocol without
        ``allowedRoutes.kinds``, whose kinds only the implementation knows."""
        if self.allowed_kinds:
            return frozenset(self.allowed_kinds)
        return _DEFAULT_ACCEPTED_KINDS.get(self.protocol, frozenset())

    @property
    def matches_hostnames(self) -> bool:
        """Whether ``hostname`` means anything: HTTP, HTTPS and TLS match on it, other
        protocols ignore it (the spec: "ignored for protocols that don't require hostname
        based matching")."""
        return self.protocol in HOSTNAME_PROTOCOLS

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
    def kind(self) -> str:
        return "Gateway"

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


def parent_gateway(spec: Mapping[str, Any], namespace: str) -> tuple[str, str] | None:
    """The Gateway a ListenerSet's ``spec.parentRef`` names, as (namespace, name); None for another kind.

    group and kind default to a Gateway, but the schema lets them name anything else;
    such a ListenerSet has no Gateway parent.
    """
    ref = _map(spec.get("parentRef"), "spec.parentRef")
    name = _opt_str(ref.get("name"), "spec.parentRef.name")
    if not name:
        raise MalformedObject("spec.parentRef.name", "is required")
    group = _opt_str(ref.get("group"), "spec.parentRef.group")
    kind = _opt_str(ref.get("kind"), "spec.parentRef.kind") or "Gateway"
    if (GROUP if group is None else group, kind) != (GROUP, "Gateway"):
        return None
    return (_opt_str(ref.get("namespace"), "spec.parentRef.namespace") or namespace, name)


def listenerset_parent(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """The Gateway a ListenerSet attaches to, as (namespace, name)."""
    try:
        return parent_gateway(_map(obj.get("spec"), "spec"), Meta.from_object(obj).namespace)
    except MalformedObject:
        return None


def listenerset_listeners(obj: Mapping[str, Any], *, namespace: str = "") -> tuple[Listener, ...]:
    meta = Meta.from_object(obj, default_namespace=namespace)
    spec = _map(obj.get("spec"), "spec")
    return tuple(
        parse_listener(
            item, owner_namespace=meta.namespace, where=f"spec.listeners[{i}]", listener_set=(meta.namespace, meta.name)
        )
        for i, item in enumerate(_list(spec.get("listeners"), "spec.listeners"))
    )

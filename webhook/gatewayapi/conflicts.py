"""Listener conflicts across a Gateway and its ListenerSets: which listeners are ``Conflicted``.

Implementations "MUST treat the parent Gateway as having the merged list of all
listeners from itself and attached ListenerSets", in this precedence (GEP-1713 and the
ListenerSet ``spec.listeners`` docs):

1. the parent Gateway's listeners;
2. ListenerSets by creation time, oldest first;
3. then ListenerSets alphabetically by ``{namespace}/{name}``.

Within one resource listeners keep their list order. Only ListenerSets the Gateway
accepts (``allowedListeners``) are merged.

Two listeners that share a port are *indistinct* (the Gateway ``spec.listeners`` docs,
"Distinct Listeners") when

* they have the same protocol and, for HTTP, HTTPS and TLS, the same hostname (no
  hostname equals only no hostname): ``HostnameConflict``; two TCP or two UDP listeners
  on one port are indistinct whatever else they say;
* one is TCP and the other HTTP, HTTPS or TLS ("all the Listeners that share a port with
  the TCP Listener are not distinct"): ``ProtocolConflict``.

Any other pair of protocols on one port (HTTP beside HTTPS or TLS, UDP beside TCP, ...)
is distinct: whether an implementation can serve both on its addresses is its own
"compatibility", so HTTP beside HTTPS/TLS is reported as something an implementation
*may* refuse, never as a conflict. For a protocol that is not core, only an exact
duplicate (port, protocol and hostname) is indistinct, and sharing a port with another
protocol is the implementation's question.

Which listener loses: "the first Listener on the precedence list MUST be accepted ...
while the conflicting listeners MUST have a Conflicted condition". The conformance
suite (ListenerSetProtocolConflict) pins what happens when several listeners share a
port: a listener is Conflicted when it is indistinct from an *earlier listener that is
not itself Conflicted* (an HTTP listener after a rejected TCP one on the same port is
Accepted).

Never decided, only reported as "may", because the spec leaves them open or the view
cannot tell:

* two listeners of one resource: for a Gateway's own list the spec says an
  implementation "MUST NOT pick one conflicting Listener as the winner", so the earlier
  one may be refused as well (the later one is refused either way);
* two ListenerSets whose creation order is unknown: manifests carry no
  ``creationTimestamp`` (one that has it is older than one that has not);
* a ListenerSet whose acceptance depends on labels of a namespace the view does not hold;
* a listener whose only rival may itself be refused;
* a listener of a protocol that is not core (it is the implementation's), and an
  HTTP, HTTPS or TLS listener after a TCP listener on its port: "If an implementation
  does not support TCP Protocol Listeners, then the previous rule does not apply" (a TCP
  listener after them is refused either way: Conflicted, or not supported).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .attachment import gateway_admits_listenerset
from .core import CORE_PROTOCOLS, HOSTNAME_PROTOCOLS
from .gateways import Gateway, Listener
from .listeners import ListenerSet

_TCP_PEERS = ("HTTP", "HTTPS", "TLS")
_TLS_ON_PORT = frozenset({"HTTPS", "TLS"})


@dataclass(frozen=True, slots=True)
class Owner:
    """The Gateway or ListenerSet a listener comes from."""

    kind: str  # "Gateway" or "ListenerSet"
    namespace: str
    name: str
    created: str = ""  # creationTimestamp; "" when unknown (a manifest not applied yet)
    accepted: bool = True  # False: whether the Gateway accepts the set is unknown

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Clash:
    """Why a listener is (or may be) refused: the earlier listener it is indistinct from."""

    reason: str  # HostnameConflict or ProtocolConflict
    listener: Listener
    owner: Owner

    def describe(self) -> str:
        if self.reason == "ProtocolConflict":
            same = f"port {self.listener.port} with protocol {self.listener.protocol}"
        else:
            same = "the same port, protocol and hostname"
        return f"{self.listener.describe()} of {self.owner.describe()} has {same}"


@dataclass(frozen=True, slots=True)
class ListenerState:
    """One listener of the merged list: Conflicted for certain, or not (with any doubts)."""

    owner: Owner
    listener: Listener
    conflict: Clash | None = None
    doubts: tuple[str, ...] = ()

    @property
    def conflicted(self) -> bool:
        return self.conflict is not None

    def describe(self) -> str:
        return f"{self.listener.describe()} of {self.owner.describe()}"


@dataclass(frozen=True, slots=True)
class MergedListeners:
    """The listeners a Gateway serves, its own and its ListenerSets', in precedence order."""

    entries: tuple[ListenerState, ...]
    by_owner: Mapping[tuple[str, str, str], tuple[ListenerState, ...]] = field(default_factory=dict, compare=False)

    @classmethod
    def of_entries(cls, entries: Iterable[ListenerState]) -> MergedListeners:
        entries = tuple(entries)
        by_owner: dict[tuple[str, str, str], list[ListenerState]] = {}
        for e in entries:
            by_owner.setdefault(e.owner.key, []).append(e)
        return cls(entries, {k: tuple(v) for k, v in by_owner.items()})

    def of(self, kind: str, namespace: str, name: str) -> tuple[ListenerState, ...]:
        return self.by_owner.get((kind, namespace, name), ())

    def usable(self, kind: str, namespace: str, name: str) -> tuple[Listener, ...]:
        """The listeners of one owner that are not Conflicted for certain."""
        return tuple(e.listener for e in self.of(kind, namespace, name) if not e.conflicted)


def precedence(listener_set: ListenerSet) -> tuple[int, str, str]:
    """Sort key of ListenerSets: by creation time (unknown last), then ``{namespace}/{name}``."""
    created = listener_set.meta.creation_timestamp
    return (0 if created else 1, created, f"{listener_set.namespace}/{listener_set.name}")


def _hostname_key(listener: Listener) -> str | None:
    return listener.hostname if listener.protocol in HOSTNAME_PROTOCOLS or listener.protocol not in CORE_PROTOCOLS else None


@dataclass
class _Entry:
    owner: Owner
    listener: Listener
    conflict: Clash | None = None
    doubts: list[str] = field(default_factory=list)

    def freeze(self) -> ListenerState:
        return ListenerState(self.owner, self.listener, self.conflict, tuple(dict.fromkeys(self.doubts)))


@dataclass
class _Port:
    """The listeners on one port that are not Conflicted, first by (protocol, hostname) and by protocol."""

    exact: dict[tuple[str, str | None], _Entry] = field(default_factory=dict)
    protocols: dict[str, _Entry] = field(default_factory=dict)

    def rivals(self, listener: Listener) -> Iterable[tuple[str, _Entry]]:
        """(reason, earlier entry) for each earlier listener this one is indistinct from."""
        same = self.exact.get((listener.protocol, _hostname_key(listener)))
        if same is not None:
            yield "HostnameConflict", same
        peers = _TCP_PEERS if listener.protocol == "TCP" else ("TCP",) if listener.protocol in _TCP_PEERS else ()
        for protocol in peers:
            if protocol in self.protocols:
                yield "ProtocolConflict", self.protocols[protocol]

    def neighbours(self, listener: Listener) -> Iterable[tuple[str, _Entry]]:
        """Listeners on the port an implementation may not serve beside this one (its choice)."""
        protocol = listener.protocol
        for other, entry in self.protocols.items():
            if other == protocol:
                continue
            if protocol not in CORE_PROTOCOLS or other not in CORE_PROTOCOLS:
                yield "the implementation decides whether it can serve these protocols on one port", entry
            elif {protocol, other} & {"HTTP"} and {protocol, other} & _TLS_ON_PORT:
                yield "some implementations cannot serve HTTP and TLS on one port", entry

    def add(self, entry: _Entry) -> None:
        listener = entry.listener
        self.exact.setdefault((listener.protocol, _hostname_key(listener)), entry)
        self.protocols.setdefault(listener.protocol, entry)


def _order_known(a: Owner, b: Owner) -> bool:
    if a == b or a.kind == "Gateway" or b.kind == "Gateway":
        return True
    return bool(a.created or b.created)


def _judge(entry: _Entry, port: _Port) -> None:
    for reason, earlier in port.rivals(entry.listener):
        clash = Clash(reason, earlier.listener, earlier.owner)
        unsure = _unsure(reason, earlier, entry)
        if earlier.owner == entry.owner:
            earlier.doubts.append(
                f"it is indistinct from {entry.listener.describe()} of the same {entry.owner.kind} ({reason}), "
                "and the spec lets an implementation refuse both"
            )
        if unsure is None:
            if entry.conflict is None:
                entry.conflict = clash
            continue
        entry.doubts.append(f"it may be Conflicted ({reason}): {clash.describe()}, {unsure}")
        if not _order_known(earlier.owner, entry.owner):
            earlier.doubts.append(f"it may be Conflicted ({reason}): {Clash(reason, entry.listener, entry.owner).describe()}"
                                  f", {unsure}")
    if entry.conflict is None:
        for why, other in port.neighbours(entry.listener):
            entry.doubts.append(f"it shares port {entry.listener.port} with {other.listener.describe()} of "
                                f"{other.owner.describe()}: {why}")


def _unsure(reason: str, earlier: _Entry, entry: _Entry) -> str | None:
    """Why a clash with an earlier listener may not make this one Conflicted; None: it does."""
    if not _order_known(earlier.owner, entry.owner):
        return "and which ListenerSet is older is unknown (neither has a creationTimestamp)"
    for owner in (earlier.owner, entry.owner):
        if not owner.accepted:
            return f"if the Gateway accepts {owner.describe()} (that depends on namespace labels the view lacks)"
    if entry.listener.protocol not in CORE_PROTOCOLS:
        return f"if the implementation tells {entry.listener.protocol} listeners apart by nothing else (its protocol)"
    if reason == "ProtocolConflict" and earlier.listener.protocol == "TCP":
        return "if the implementation supports TCP listeners (if not, the TCP listener is refused and this one is served)"
    if earlier.doubts:
        return "if that listener is served (it may be refused itself)"
    return None


def merge_listeners(gateway: Gateway, listener_sets: Iterable[tuple[ListenerSet, bool | None]]) -> MergedListeners:
    """The Gateway's merged listeners with their conflicts.

    ``listener_sets`` are (ListenerSet, accepted) pairs for the sets whose parent is the
    Gateway, ``accepted`` as :func:`~webhook.gatewayapi.gateway_admits_listenerset`
    answers it: sets the Gateway refuses are left out, sets it may accept are merged
    but can only cause or suffer doubts.
    """
    owners = [(Owner("Gateway", gateway.namespace, gateway.name), gateway.listeners)]
    merged = sorted(((s, a) for s, a in listener_sets if a is not False), key=lambda pair: precedence(pair[0]))
    owners += [
        (Owner("ListenerSet", s.namespace, s.name, s.meta.creation_timestamp, accepted=bool(a)), s.listeners)
        for s, a in merged
    ]
    ports: dict[int, _Port] = {}
    entries: list[_Entry] = []
    for owner, listeners in owners:
        for listener in listeners:
            entry = _Entry(owner, listener)
            entries.append(entry)
            if listener.port is None:
                continue
            port = ports.setdefault(listener.port, _Port())
            _judge(entry, port)
            if entry.conflict is None:
                port.add(entry)
    return MergedListeners.of_entries(e.freeze() for e in entries)


def merge_with(
    gateway: Gateway,
    listener_sets: Iterable[ListenerSet],
    *,
    labels: Callable[[str], Mapping[str, str] | None],
    candidate: ListenerSet | None = None,
    without: bool = False,
) -> MergedListeners:
    """:func:`merge_listeners` of the sets naming the Gateway, with ``candidate`` in place of
    the set with its key (a CREATE or UPDATE being judged) or, ``without``, with that set
    left out (a DELETE). ``labels`` answers a namespace's labels (None: unknown)."""
    sets = [s for s in listener_sets if candidate is None or s.key != candidate.key]
    if candidate is not None and not without:
        sets.append(candidate)
    return merge_listeners(
        gateway,
        (
            (s, gateway_admits_listenerset(gateway, namespace=s.namespace, namespace_labels=labels(s.namespace))
             if s.parent == gateway.key else False)
            for s in sets
        ),
    )

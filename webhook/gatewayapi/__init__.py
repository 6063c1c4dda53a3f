"""Gateway API semantics, as the specification defines them. Pure functions, no I/O.

Everything a rule needs to predict what a Gateway controller will write into a
route's status lives here, one module per concern:

* ``core``: the API group and kinds, :class:`MalformedObject`, typed field readers and
  object metadata;
* ``selectors``: Kubernetes label selector semantics;
* ``hostnames``: hostname matching and intersection with wildcards
  (``NoMatchingListenerHostname``);
* ``references``: parentRefs and object references with the defaults the API applies
  (parentRef group/kind/namespace, backendRef group/kind);
* ``routes``: routes of every kind and version;
* ``paths``: the path matches of a route's rules and whether two overlap;
* ``gateways``: Gateways, ListenerSets and listeners (``allowedRoutes.namespaces.from:
  Same`` by default);
* ``grants``: ReferenceGrant matching (``RefNotPermitted``);
* ``listeners``: ListenerSets, and the route kinds each core protocol serves
  (``InvalidRouteKinds``);
* ``conflicts``: the merged listeners of a Gateway and its ListenerSets in GEP-1713's
  precedence, and which of them are ``Conflicted``;
* ``attachment``: listener selection by ``sectionName`` and ``port``
  (``NoMatchingParent``) and ``allowedRoutes`` evaluation, namespaces and kinds
  (``NotAllowedByListeners``).

Callers use the package as one namespace (``from webhook import gatewayapi as gw``).

Hostnames: a wildcard label ``*.`` is a suffix match on whole labels: the spec says
``*.example.com`` matches ``test.example.com`` *and* ``foo.test.example.com`` but not
``example.com``. Hostnames are compared case-insensitively (DNS names are).
"""

from .attachment import (
    Attachment,
    ListenerVerdict,
    evaluate_attachment,
    gateway_admits_listenerset,
    listener_admits_kind,
    listener_admits_namespace,
    listeners_for_ref,
)
from .conflicts import Clash, ListenerState, MergedListeners, Owner, merge_listeners, merge_with, precedence
from .core import (
    CORE_GROUP,
    CORE_PROTOCOLS,
    DEFAULT_KINDS_BY_PROTOCOL,
    GROUP,
    HOSTNAME_PROTOCOLS,
    HOSTNAME_ROUTE_KINDS,
    NAME_LABEL,
    ROUTE_KINDS,
    MalformedObject,
    Meta,
)
from .gateways import Gateway, Listener, listenerset_listeners, listenerset_parent, parse_listener
from .grants import ReferenceGrant, reference_permitted
from .hostnames import (
    hostname_matches,
    intersect_hostname,
    intersect_hostnames,
    is_wildcard,
    normalize_hostname,
)
from .listeners import (
    COMPATIBLE_KINDS_BY_PROTOCOL,
    ListenerSet,
    RouteKinds,
    route_kinds,
)
from .paths import PathMatch, paths_overlap
from .references import ObjectRef, ParentRef, parse_object_ref, parse_parent_ref
from .routes import Route
from .selectors import LabelSelector

__all__ = [
    "COMPATIBLE_KINDS_BY_PROTOCOL",
    "CORE_GROUP",
    "CORE_PROTOCOLS",
    "DEFAULT_KINDS_BY_PROTOCOL",
    "GROUP",
    "HOSTNAME_PROTOCOLS",
    "HOSTNAME_ROUTE_KINDS",
    "NAME_LABEL",
    "ROUTE_KINDS",
    "Attachment",
    "Clash",
    "Gateway",
    "LabelSelector",
    "Listener",
    "ListenerSet",
    "ListenerState",
    "ListenerVerdict",
    "MalformedObject",
    "MergedListeners",
    "Meta",
    "ObjectRef",
    "Owner",
    "ParentRef",
    "PathMatch",
    "ReferenceGrant",
    "Route",
    "RouteKinds",
    "evaluate_attachment",
    "gateway_admits_listenerset",
    "hostname_matches",
    "intersect_hostname",
    "intersect_hostnames",
    "is_wildcard",
    "listener_admits_kind",
    "listener_admits_namespace",
    "listeners_for_ref",
    "listenerset_listeners",
    "listenerset_parent",
    "merge_listeners",
    "merge_with",
    "normalize_hostname",
    "parse_listener",
    "parse_object_ref",
    "parse_parent_ref",
    "paths_overlap",
    "precedence",
    "reference_permitted",
    "route_kinds",
]

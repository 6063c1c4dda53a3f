"""Which namespaces the deployed webhook never sees, so that ``check`` skips them too.

The webhook configurations in ``deploy/base/`` exclude these namespaces with a
``namespaceSelector`` (``kubernetes.io/metadata.name NotIn [...]``) and let any namespace
opt out with a label; kube-apiserver then never sends their objects, so admission
allows them whatever the policies say. ``routewarden check`` skips the same objects, so
CI and admission agree. ``tests/test_deploy.py`` keeps this list and ``deploy/`` in step.
"""

from __future__ import annotations

from collections.abc import Mapping

# The control plane's namespaces; routewarden's own namespace comes on top (WEBHOOK_NAMESPACE).
EXCLUDED_NAMESPACES: tuple[str, ...] = ("kube-system", "kube-node-lease", "kube-public")
WEBHOOK_NAMESPACE = "routewarden"
OPT_OUT_LABEL = ("routewarden.dev/ignore", "true")


def excluded_namespaces(webhook_namespace: str = WEBHOOK_NAMESPACE) -> tuple[str, ...]:
    return (*EXCLUDED_NAMESPACES, webhook_namespace)


def skipped_because(namespace: str, labels: Mapping[str, str] | None, *,
                    webhook_namespace: str = WEBHOOK_NAMESPACE) -> str:
    """Why the webhook would never see an object of ``namespace`` ("" when it would)."""
    if namespace in excluded_namespaces(webhook_namespace):
        return f"namespace {namespace} is excluded by the webhook configurations"
    key, value = OPT_OUT_LABEL
    if labels is not None and labels.get(key) == value:
        return f"namespace {namespace} is labelled {key}={value}"
    return ""

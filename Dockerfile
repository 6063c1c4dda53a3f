# syntax=docker/dockerfile:1
# routewarden container image: the package and its dependencies in a virtualenv on
# python slim, run as an unprivileged user with a read-only root filesystem in mind.
#
#   docker build -t routewarden:dev .
#
# Both stages use the same base, pinned to a patch release so rebuilds are
# reproducible; bump both together on purpose (release builds may add an @sha256 digest).

# ---- builder: build the wheel and install it with its dependencies into /opt/venv ----
FROM python:3.11.14-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY webhook ./webhook
# Every dependency ships manylinux wheels, so no compiler is needed even here. The otlp
# extra is included so OTEL_EXPORTER_OTLP_ENDPOINT works in the image.
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir "$(ls /wheels/*.whl)[otlp]"

# ---- runtime: the virtualenv only; no pip cache, no sources, no build tools ----
FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="routewarden" \
      org.opencontainers.image.description="Admission webhook for shared Gateway API gateways" \
      org.opencontainers.image.licenses="Apache-2.0"
# 65532 is the conventional "nonroot" uid; the Deployment asks for the same ids.
RUN groupadd --system --gid 65532 routewarden \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin routewarden
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
EXPOSE 8443
# No HEALTHCHECK: Kubernetes ignores it and probes /healthz and /readyz over HTTPS
# (see deploy/base/deployment.yaml), and the image has no HTTP client to run one.
# checkov:skip=CKV_DOCKER_2:Kubernetes probes /healthz and /readyz; a Docker HEALTHCHECK is ignored there
ENTRYPOINT ["routewarden"]
CMD ["serve", "--policies", "/etc/routewarden/policies", "--cert-dir", "/etc/routewarden/tls", "--address", "0.0.0.0", "--port", "8443"]

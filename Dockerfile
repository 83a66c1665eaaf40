# syntax=docker/dockerfile:1
#
# falco-reporter image: `falco-reporter run` (operator + embedded receiver) by default.
#
#   docker build -t falco-reporter:0.1.0 .
#   docker build --build-arg EXTRAS=ollama,openai -t falco-reporter:0.1.0-llm .
#   hack/image.sh   (no registry: a debootstrapped base and a local wheelhouse, built with buildah)
#
# EXTRAS selects the LangChain provider integrations (pyproject optional-dependencies):
# llamacpp, ollama, openai, anthropic, azure_openai, bedrock, google. Nothing secret is baked in:
# the webhook token, TLS material and API keys come from Kubernetes Secrets at run time.

# Pinned base (bump deliberately; pin by digest in your registry mirror for reproducible builds).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG EXTRAS=""
# Offline builds: a pip find-links location (a directory mounted into the build, or a URL) with
# every dependency as a wheel, used instead of PyPI (hack/image.sh). Empty: PyPI, as usual.
ARG WHEELHOUSE=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Reject unknown extras early (pip would only warn and build an image without them).
RUN for extra in $(echo "${EXTRAS}" | tr ',' ' '); do \
      case "${extra}" in \
        llamacpp|ollama|openai|anthropic|azure_openai|bedrock|google) ;; \
        *) echo "unknown EXTRAS entry: ${extra}" >&2; exit 1 ;; \
      esac; \
    done

# Compilers live only in this stage: llama-cpp-python builds llama.cpp from source.
RUN case ",${EXTRAS}," in \
      *,llamacpp,*) apt-get update \
        && apt-get install -y --no-install-recommends build-essential cmake \
        && rm -rf /var/lib/apt/lists/* ;; \
    esac

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator

RUN if [ -n "${WHEELHOUSE}" ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS="${WHEELHOUSE}"; fi \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip wheel \
    && /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && wheel="$(ls /wheels/falco_reporter-*.whl)" \
    && if [ -n "${EXTRAS}" ]; then spec="${wheel}[${EXTRAS}]"; else spec="${wheel}"; fi \
    && /opt/venv/bin/pip install "${spec}" \
    && /opt/venv/bin/falco-reporter --version

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ARG EXTRAS=""
LABEL org.opencontainers.image.title="falco-reporter" \
      org.opencontainers.image.description="Turns Falco alerts into enriched, validated AlertReports in Kubernetes" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

# llama.cpp needs the OpenMP runtime library at run time (a library, not a compiler).
RUN case ",${EXTRAS}," in \
      *,llamacpp,*) apt-get update \
        && apt-get install -y --no-install-recommends libgomp1 \
        && rm -rf /var/lib/apt/lists/* ;; \
    esac \
    && groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home \
         --shell /usr/sbin/nologin nonroot

COPY --from=builder /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/nonroot

# Numeric, so runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
WORKDIR /home/nonroot

# 8080: receiver (POST /v1/alerts, /healthz, /readyz, /metrics); 8081: kopf liveness (--liveness).
EXPOSE 8080 8081

ENTRYPOINT ["falco-reporter"]
CMD ["run"]

# syntax=docker/dockerfile:1
# Build a wheel in a full image, install it into a venv, and copy only the venv into a slim
# runtime: no compiler, no sources, no pip cache in the image that runs in the cluster.
# Pinned by tag; pin by digest too (python:3.12.7-slim-bookworm@sha256:...) when you publish.
FROM python:3.12.7-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
RUN python -m venv /opt/gati \
 && /opt/gati/bin/pip install --upgrade pip==24.2 \
 && /opt/gati/bin/pip install .

FROM python:3.12.7-slim-bookworm
# A fixed numeric uid, matching runAsUser in deploy/operator, so runAsNonRoot can verify it.
RUN groupadd --gid 10001 gati && useradd --uid 10001 --gid gati --no-create-home --shell /usr/sbin/nologin gati
COPY --from=build /opt/gati /opt/gati
ENV PATH=/opt/gati/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["gati-operator"]
# The Deployments pass `run <service>`; this default only makes `docker run` show the help.
CMD ["--help"]

# The job image: the installed package and its locked dependencies, nothing else (no tests, sandbox or benchmarks).
#   docker build -t course-inventory .                     # FROM the registry's python:3.11-slim
#   docker build --build-arg BASE_IMAGE=local/python:3.11-bookworm -t course-inventory .   # deploy/base-image/
# It runs `course-inventory run` in /app, where config/secrets/ (configuration) and data/ (CSV copies) are mounted;
# under OpenShift's arbitrary uid (group 0) too. Needs BuildKit (RUN --mount), the default builder since Docker 23.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/course-inventory
# Every dependency pinned with its hashes (requirements.lock, `make lock`); each one ships a wheel: no compiler.
# A build behind a TLS-intercepting proxy passes its CA bundle as a build secret (--secret id=pip_ca,src=...):
# used for this step only, never stored in a layer.
COPY requirements.lock /src/
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
 && /opt/course-inventory/bin/pip install --require-hashes --only-binary=:all: --no-deps -r /src/requirements.lock
COPY . /src/
RUN --mount=type=secret,id=pip_ca,required=false \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
 && /opt/course-inventory/bin/pip install --no-deps /src \
 && /opt/course-inventory/bin/pip uninstall -y -q setuptools pip \
 && /opt/course-inventory/bin/course-inventory --version

FROM ${BASE_IMAGE}
COPY --from=build /opt/course-inventory /opt/course-inventory
# USER: yoyo records getpass.getuser(), which fails for a uid without a passwd entry (OpenShift's arbitrary uid).
ENV PATH=/opt/course-inventory/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 USER=course-inventory
WORKDIR /app
# OpenShift runs the container as an arbitrary uid in group 0: files are group 0 and data/ is group-writable.
RUN useradd --uid 1001 --gid 0 --home-dir /app --no-create-home --shell /usr/sbin/nologin course-inventory \
 && mkdir -p /app/config/secrets /app/data \
 && chgrp -R 0 /app && chmod -R g=u /app && chmod 0750 /app/config/secrets
USER 1001
CMD ["course-inventory", "run"]

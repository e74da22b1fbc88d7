# wavespeed-mock as a container: `docker build -t wavespeed-mock .` then `docker run -p 8000:8000 wavespeed-mock`.
# compose.yaml runs it with Redis as a shared team mock.

# --- build: a wheel, so the image gets exactly what `pip install wavespeed-mock` would (schemas, fixtures and
# conformance copied into mock_server/ by hatch_build.py), and none of the sources.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml hatch_build.py README.md LICENSE ./
COPY mock_server ./mock_server
COPY schemas ./schemas
COPY fixtures ./fixtures
COPY conformance ./conformance
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

# --- run
FROM python:3.11-slim
# Optional extras, e.g. --build-arg EXTRAS="[redis]" for `serve --store redis://...` (compose.yaml sets it).
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install "$(ls /wheels/wavespeed_mock-*.whl)${EXTRAS}" && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin wavespeed
# The fake keeps its state in memory (or Redis) and writes no files: it needs no home and no root.
USER wavespeed:wavespeed
WORKDIR /tmp
EXPOSE 8000
# slim has no curl: ask the fake's own health endpoint with the standard library. The port and the control token
# are read from the same variables the server reads, so overriding them keeps the check right.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; token = os.environ.get('WAVESPEED_MOCK_CONTROL_TOKEN'); request = urllib.request.Request('http://127.0.0.1:%s/_mock/health' % os.environ.get('WAVESPEED_MOCK_PORT', '8000'), headers={'X-Mock-Control-Token': token} if token else {}); sys.exit(0 if urllib.request.urlopen(request, timeout=2).status == 200 else 1)"]
ENTRYPOINT ["wavespeed-mock"]
# Listen on every interface of the container; any other option can follow `docker run IMAGE serve ...` or be
# given as a WAVESPEED_MOCK_* variable (`wavespeed-mock serve --help` lists them).
CMD ["serve", "--host", "0.0.0.0"]

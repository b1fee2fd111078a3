# syntax=docker/dockerfile:1
# mediawatch: build wheels in a full image, run them in a slim one as a non-root user.

FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY basis basis
COPY crawler crawler
COPY spiders spiders
COPY storage storage
COPY alerts alerts
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    MEDIAWATCH_CONFIG=/config/config.yaml
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin mediawatch \
    && mkdir -p /config /data && chown mediawatch /data
COPY config.yaml /config/config.yaml
USER mediawatch
# the default database, sqlite:///mediawatch.db, lands in the volume
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8787
HEALTHCHECK --interval=1m --timeout=5s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/healthz')"
ENTRYPOINT ["mediawatch"]
CMD ["run", "--listen", "0.0.0.0:8787"]

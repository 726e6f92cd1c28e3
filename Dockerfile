# One image for every Vigie service: `vigie service <name>` (see docker-compose.yml).
# FFmpeg comes inside the PyAV wheel (libx264 included); no system ffmpeg is needed. The local
# servers of `vigie run` and the tests (the `local` extra) are not in it.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
# Installed into a venv that the runtime copies whole: no wheel is left in any layer.
RUN python -m venv /opt/vigie && /opt/vigie/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm AS runtime
# The extraction record (PDF) of requisition exports is set in DejaVu (French accents, dashes);
# pg_dump for `vigie backup` (PostgreSQL 15, as the server); Debian's PostgreSQL exporter for
# Prometheus (the postgres-exporter container and the Kubernetes sidecar run it from this image).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-dejavu-core \
    postgresql-client-15 prometheus-postgres-exporter && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /nonexistent vigie
COPY --from=build /opt/vigie /opt/vigie
ENV PATH=/opt/vigie/bin:$PATH VIGIE_LOG_FORMAT=json
USER vigie
ENTRYPOINT ["vigie"]
CMD ["--help"]

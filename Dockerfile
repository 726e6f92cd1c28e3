# One image for every Vigie service: `vigie service <name>` (see docker-compose.yml).
# FFmpeg comes inside the PyAV wheel (libx264 included); no system ffmpeg is needed.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm AS runtime
# The extraction record (PDF) of requisition exports is set in DejaVu (French accents, dashes);
# pg_dump for `vigie backup` (PostgreSQL 15, as the server).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-dejavu-core \
    postgresql-client-15 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /nonexistent vigie
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER vigie
ENV VIGIE_LOG_FORMAT=json
ENTRYPOINT ["vigie"]
CMD ["--help"]

# Vigie — the two commands of the quick start are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= var
PYTEST_ARGS ?=
# Test workers (pytest-xdist): each starts its own servers on free ports. WORKERS=0: in-process.
WORKERS ?= 2
# Debian packages: GStreamer's RTSP server for simulated cameras, ffmpeg for benchmarks,
# docker-compose to validate the Compose file (no container engine is needed for that), chromium
# for the web UI's browser tests (driven by Playwright; its own browser download is never used).
# prometheus for promtool (the alert rules), its PostgreSQL exporter (make run, the suite), haproxy to check the Compose load balancer's configuration.
DEB_PACKAGES := python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good \
	gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools \
	ffmpeg docker-compose chromium fonts-dejavu-core prometheus prometheus-postgres-exporter haproxy

.PHONY: images compose-check prometheus-check setup run test test-fast lint screenshots bench-masking bench-ingest bench-recorder bench-retention bench-live bench-layout bench-scale bench-lifecycle bench-export bench-redact bench-holds asyncapi clean

setup: $(VENV)/.installed
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# Node.js and npm for the suite's police-system client (tests/integration/js): Debian's, unless
	@# a Node.js with its npm is already there (NodeSource's bundles it).
	@command -v npm >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	@cd tests/integration/js && { [ node_modules/.package-lock.json -nt package-lock.json ] || \
	  npm ci --no-audit --no-fund --loglevel=error; }
	@# ESLint for the web UI's JavaScript (make lint, tests/foundation/test_js_lint.py).
	@cd tools/eslint && { [ node_modules/.package-lock.json -nt package-lock.json ] || \
	  npm ci --no-audit --no-fund --loglevel=error; }

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,local]'
	@touch $@

run: setup
	$(BIN)/vigie run --data $(DATA)

test: setup
	$(BIN)/pytest -n $(WORKERS) $(PYTEST_ARGS)

# Everything but the slow end-to-end tests, for a quick local loop.
test-fast: setup
	$(BIN)/pytest -n $(WORKERS) -m "not slow and not e2e" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check libs services tests bench deploy
	$(BIN)/mypy
	tools/eslint/node_modules/.bin/eslint --config tools/eslint/eslint.config.js services/viewer_gateway/ui/js

# The browser tests again, writing their screenshots over docs/ui/ (shown in docs/ui.md).
screenshots: setup
	VIGIE_SCREENSHOTS=docs/ui $(BIN)/pytest tests/ui $(PYTEST_ARGS)

asyncapi: setup
	$(BIN)/vigie asyncapi --output docs/asyncapi.yaml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

bench-masking: setup
	$(BIN)/python -m bench.masking

bench-ingest: setup
	$(BIN)/python -m bench.ingest

bench-recorder: setup
	$(BIN)/python -m bench.recorder

bench-retention: setup
	$(BIN)/python -m bench.retention

bench-live: setup
	$(BIN)/python -m bench.live

# 45 cameras, two replicas of each of ingest, masking and recorder, 10 minutes, one of each killed.
bench-scale: setup
	$(BIN)/python -m bench.scale

bench-lifecycle: setup  # SeaweedFS's lifecycle worker: erased how long after due
	$(BIN)/python -m bench.lifecycle

bench-export: setup  # an hour of 1080p joined, beside ffmpeg -f concat -c copy
	$(BIN)/python -m bench.export

bench-redact: setup  # redacted copies: frames/s per core, beside ffmpeg boxblur
	$(BIN)/python -m bench.redact

bench-holds: setup  # hold copies under legal hold, beside the server-side copy they replaced
	$(BIN)/python -m bench.holds

bench-layout: setup  # against a running `make run`
	$(BIN)/python -m bench.layout --data $(DATA)

# Containers for real (issue 35, docs/deploy.md): podman (apt), the images the Compose file names
# built here, the deployment started, a camera recorded, every part killed and restarted.
images:
	bash deploy/images/prerequisites.sh
	bash deploy/images/build.sh

# A real Prometheus with the alert rules against `vigie run --replicas 2`: quiet while replicas
# hand cameras over, the right alert when the store or every recorder stops (docs/operations.md).
prometheus-check: setup
	$(BIN)/python deploy/prometheus/check.py

compose-check: setup
	bash deploy/images/prerequisites.sh
	$(BIN)/pip install -q podman-compose==1.6.0
	$(BIN)/python deploy/compose/check.py

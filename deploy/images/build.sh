#!/usr/bin/env bash
# Build, with podman, every image docker-compose.yml names, where no registry can be reached
# (issue 35; ../shared/ENVIRONMENT.md): a Debian base made with debootstrap, then Python, NATS,
# SeaweedFS, PostgreSQL and HAProxy on it (the upstream images' entrypoints, users and paths), then
# Vigie's own image from its Dockerfile. Each is tagged with the name the Compose file uses.
# Builds reach apt and PyPI as the host does (its CA bundle is lent to each build, not kept).
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}  # the one apt uses here
ca=/etc/ssl/certs/ca-certificates.crt
build() { podman build --pull=never -q "$@"; }
# pip inside a build: the host's CA bundle lent for it (over the image's own), not kept.
build_pip() { build -v "$ca:$ca:ro" "$@"; }

if ! podman image exists localhost/debian:bookworm-minbase; then
  root=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
  tar -C "$root" -c . | podman import - localhost/debian:bookworm-minbase >/dev/null
  rm -rf "$root"
fi
build -t docker.io/library/python:3.11-slim-bookworm python
build_pip -t docker.io/library/nats:2.15.1-alpine nats
build_pip -t docker.io/chrislusf/seaweedfs:4.48 seaweedfs
build -t docker.io/library/postgres:15-bookworm postgres
build -t docker.io/library/haproxy:2.6-bookworm haproxy
build_pip -t "localhost/vigie:${VIGIE_VERSION:-latest}" -f "$repo/Dockerfile" "$repo"
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'vigie|nats|seaweedfs|postgres|python|haproxy'

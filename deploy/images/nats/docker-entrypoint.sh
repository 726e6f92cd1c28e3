#!/bin/sh
# As the official image's: options alone run nats-server with them.
set -e
if [ "${1#-}" != "$1" ]; then
  set -- nats-server "$@"
fi
exec "$@"

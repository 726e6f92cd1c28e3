#!/bin/sh
# As the official haproxy image's entrypoint (docker-library/haproxy, GPL-2.0-or-later).
set -e
if [ "${1#-}" != "$1" ]; then
	set -- haproxy "$@"
fi
if [ "$1" = 'haproxy' ]; then
	shift
	# -W: master-worker (reloads); -db: stay in the foreground, log to stderr
	set -- haproxy -W -db "$@"
fi
exec "$@"

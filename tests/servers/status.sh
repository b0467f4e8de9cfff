#!/usr/bin/env bash
# Show which of the servers started by tests/servers/up.sh are running, with
# their pid, ports and resident memory (RSS of the whole process group, e.g.
# the Elasticsearch launcher JVM + server JVM).
#
#   tests/servers/status.sh [elasticsearch] [opensearch] [loki] [otelcol]   (default: all)
#
# Exit status: 0 if all the named servers are running, 3 otherwise.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_names "$@"

rc=0
printf '%-14s %-8s %-8s %-12s %s\n' SERVER STATE PID RSS PORTS
for name in "${NAMES[@]}"; do
  if pid=$(running_pid "$name"); then
    rss=$(group_rss_kib "$pid")
    printf '%-14s %-8s %-8s %-12s %s\n' "$name" running "$pid" "$((rss / 1024)) MiB" "$(server_ports "$name")"
  else
    printf '%-14s %-8s %-8s %-12s %s\n' "$name" stopped - - "$(server_ports "$name")"
    rc=3
  fi
done
echo "run folder: $RUN  (logs: $LOGS)"
exit $rc

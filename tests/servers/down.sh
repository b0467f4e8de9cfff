#!/usr/bin/env bash
# Stop the servers that tests/servers/up.sh started.
#
#   tests/servers/down.sh [--wipe] [elasticsearch] [opensearch] [loki] [otelcol]   (default: all)
#
# Only the processes recorded in <run>/pids/<name>.pid are stopped, and only
# if /proc/<pid>/cmdline still shows the program up.sh started (a reused pid
# is left alone).  The server's process group (the server and the children it
# started, e.g. the Elasticsearch server JVM under its launcher) gets SIGTERM;
# down.sh waits for all of them to exit (SIGKILL after
# $EPOST_SERVERS_STOP_TIMEOUT seconds, default 60).
#
# --wipe  also delete the servers' data in the run folder (indices, VictoriaLogs
#         storage, collector output); logs are kept.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WIPE=
NAMES=()
for a in "$@"; do
  case $a in
    --wipe) WIPE=1 ;;
    -h | --help)
      usage "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *) NAMES+=("$a") ;;
  esac
done
((${#NAMES[@]})) || NAMES=("${ALL_SERVERS[@]}")
check_names "${NAMES[@]}"
need_cmd ps awk

STOP_TIMEOUT=${EPOST_SERVERS_STOP_TIMEOUT:-60}

# members of process group PGID whose command line still carries SIG
our_group_pids() {
  local pgid=$1 sig=$2 p
  for p in $(group_pids "$pgid"); do
    if [[ $(cmdline_of "$p") == *"$sig"* ]]; then echo "$p"; fi
  done
  return 0
}

stop_one() {
  local name=$1 pidf=$PIDS/$1.pid t0
  local -a pids
  if ! read_pidfile "$name"; then
    say "$name: not running (no pid file $pidf)"
    rm -f "$pidf"
    return 0
  fi
  if [[ -z $PF_SIG ]]; then
    say "$name: pid file $pidf has no program signature; not touching pid $PF_PID"
    rm -f "$pidf"
    return 0
  fi
  mapfile -t pids < <(our_group_pids "$PF_PID" "$PF_SIG")
  if pid_alive "$PF_PID" && ! pid_is_ours "$PF_PID" "$PF_SIG"; then
    say "$name: pid $PF_PID now belongs to another program ($(cmdline_of "$PF_PID" | cut -c1-80)); not touching it"
  fi
  if ((${#pids[@]} == 0)); then
    say "$name: not running (stale pid file removed)"
    rm -f "$pidf"
    return 0
  fi
  say "$name: stopping pid(s) ${pids[*]}"
  # the group leader first (the ES/OpenSearch launchers shut their JVM down
  # cleanly), then whatever of ours is left in the group
  if pid_is_ours "$PF_PID" "$PF_SIG"; then
    kill -TERM "$PF_PID" 2>/dev/null || true
  else
    kill -TERM "${pids[@]}" 2>/dev/null || true
  fi
  t0=$(date +%s)
  while true; do
    mapfile -t pids < <(our_group_pids "$PF_PID" "$PF_SIG")
    ((${#pids[@]} == 0)) && break
    if (($(date +%s) - t0 >= STOP_TIMEOUT)); then
      say "$name: still running after ${STOP_TIMEOUT}s, sending SIGKILL to ${pids[*]}"
      kill -KILL "${pids[@]}" 2>/dev/null || true
      sleep 1
      mapfile -t pids < <(our_group_pids "$PF_PID" "$PF_SIG")
      ((${#pids[@]} == 0)) || die "$name: could not stop pid(s) ${pids[*]}"
      break
    fi
    # the launcher may exit before its child: signal the rest once it is gone
    if ! pid_alive "$PF_PID"; then kill -TERM "${pids[@]}" 2>/dev/null || true; fi
    sleep 0.5
  done
  rm -f "$pidf"
  say "$name: stopped after $(($(date +%s) - t0))s"
}

wipe_one() {
  local d
  case $1 in
    elasticsearch) d=$RUN/elasticsearch ;;
    opensearch) d=$RUN/opensearch ;;
    loki) d=$RUN/loki-data ;;
    otelcol) d=$RUN/otelcol ;;
  esac
  rm -rf "$d"
  say "$1: wiped $d"
}

for name in "${NAMES[@]}"; do
  stop_one "$name"
  [[ -z $WIPE ]] || wipe_one "$name"
done

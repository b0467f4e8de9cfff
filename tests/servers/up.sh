#!/usr/bin/env bash
# Install (on first use) and start real servers on 127.0.0.1 for the sink tests.
#
#   tests/servers/up.sh [elasticsearch] [opensearch] [loki] [otelcol]   (default: all)
#
#   elasticsearch  http://127.0.0.1:9200 (transport 9300)  ES integ-test zip
#   opensearch     http://127.0.0.1:9201 (transport 9301)  OpenSearch integ-test zip
#   loki           http://127.0.0.1:3100  Loki push API served by VictoriaLogs
#                  (Grafana Loki itself is not used: AGPL, see docs/testing.md)
#   otelcol        OTLP gRPC 127.0.0.1:4317, OTLP HTTP 127.0.0.1:4318; prints
#                  OTELCOL_OUTPUT=<file> (file exporter output, JSON lines)
#
# Idempotent: a server already started by up.sh is left running.  Versions:
# tests/servers/versions.env.  Cache: $EPOST_SERVERS_CACHE (default
# ~/.cache/epost-shipper/servers).  Run state and logs: $EPOST_SERVERS_RUN
# (default <repo>/target/servers; logs in <run>/logs/).  Stop: down.sh.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_names "$@"
need_cmd curl setsid ps awk sed flock timeout

mkdir -p "$CACHE" "$LOGS" "$PIDS"

now() { date +%s; }

# ---------------------------------------------------------------------------
# install helpers
# ---------------------------------------------------------------------------
# with_lock NAME CMD...: serialise installs of NAME between concurrent up.sh runs
with_lock() {
  local name=$1 fd
  shift
  exec {fd}>"$CACHE/.lock-$name"
  flock "$fd"
  "$@"
  exec {fd}>&-
}

# run_install NAME FUNC: runs FUNC with its output in <logs>/install-NAME.log,
# reports the time taken, shows the log tail on failure.
run_install() {
  local name=$1 fn=$2 t0 log=$LOGS/install-$1.log
  t0=$(now)
  say "$name: installing into $CACHE (first use; log: $log)"
  # (not 'if ! ...': errexit must stay in force inside the install steps)
  local rc
  set +e
  (
    set -e
    with_lock "$name" "$fn"
  ) >"$log" 2>&1
  rc=$?
  set -e
  if ((rc != 0)); then
    rm -rf "$CACHE"/*.tmp."$$" # half-done downloads/builds of this run
    tail_log "$log" 60
    die "$name: installation failed (full log: $log)"
  fi
  say "$name: installed in $(($(now) - t0))s"
}

# fetch + unzip an integ-test distribution into DEST (atomically)
install_zip_dist() {
  local gav=$1 dest=$2 tmp
  [[ -d $dest/bin ]] && return 0 # installed meanwhile by a concurrent run
  tmp=$dest.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp/zip" "$tmp/unpacked"
  echo "fetching $gav:zip from Maven Central"
  maven_fetch_zip "$gav" "$tmp/zip"
  ls -l "$tmp/zip"
  need_cmd unzip
  unzip -q "$tmp"/zip/*.zip -d "$tmp/unpacked"
  local top
  top=$(find "$tmp/unpacked" -mindepth 1 -maxdepth 1 -type d | head -1)
  [[ -n $top && -d $top/bin ]] || { echo "unexpected zip layout"; return 1; }
  rm -rf "$dest"
  mv "$top" "$dest"
  rm -rf "$tmp"
  # the zip stays in the cache's Maven repo only as long as needed: drop it
  local g a v
  IFS=: read -r g a v <<<"$gav"
  rm -f "$CACHE/m2/${g//.//}/$a/$v/"*.zip
}

install_elasticsearch_body() {
  install_zip_dist "org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION" "$ES_HOME"
}

install_opensearch_body() {
  install_zip_dist "org.opensearch.distribution.integ-test-zip:opensearch:$OPENSEARCH_VERSION" "$OS_HOME"
}

install_loki_body() {
  [[ -x $VL_BIN ]] && return 0
  go_env
  local dir tmp
  dir=$(dirname "$VL_BIN")
  tmp=$dir.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp"
  go version
  echo "go install $VICTORIALOGS_PACKAGE@$VICTORIALOGS_VERSION"
  GOBIN=$tmp go install -trimpath \
    -ldflags "-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-$VICTORIALOGS_VERSION" \
    "$VICTORIALOGS_PACKAGE@$VICTORIALOGS_VERSION"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  "$VL_BIN" -version
}

# the builder manifest must keep every collector module at the pinned release
check_otelcol_manifest() {
  local manifest=$SERVERS_DIR/otelcol-builder.yaml bad
  bad=$(grep -E '^\s*-?\s*gomod:' "$manifest" | grep -v -E "v($OTELCOL_VERSION|$OTELCOL_STABLE_VERSION)\s*$" || true)
  [[ -z $bad ]] || die "otelcol-builder.yaml has modules not at v$OTELCOL_VERSION/v$OTELCOL_STABLE_VERSION (versions.env):
$bad"
}

install_otelcol_body() {
  go_env
  go version
  local dir tmp
  dir=$(otelcol_dir)
  if [[ ! -x $dir/dist/otelcol-epost ]]; then
    if [[ ! -x $OCB_BIN ]]; then
      echo "go install $OTELCOL_BUILDER_MODULE@v$OTELCOL_VERSION"
      tmp=$(dirname "$OCB_BIN").tmp.$$
      rm -rf "$tmp"
      mkdir -p "$tmp"
      GOBIN=$tmp go install "$OTELCOL_BUILDER_MODULE@v$OTELCOL_VERSION"
      rm -rf "$(dirname "$OCB_BIN")"
      mv "$tmp" "$(dirname "$OCB_BIN")"
    fi
    tmp=$dir.tmp.$$
    rm -rf "$tmp"
    mkdir -p "$tmp"
    cp "$SERVERS_DIR/otelcol-builder.yaml" "$tmp/builder.yaml"
    echo "building the collector with $OCB_BIN"
    (cd "$tmp" && "$OCB_BIN" --config builder.yaml)
    rm -rf "$dir"
    mv "$tmp" "$dir"
    "$dir/dist/otelcol-epost" components
  fi
  # the small OTLP/gRPC client that smoke.sh uses
  dir=$(otlpgrpc_smoke_dir)
  if [[ ! -x $dir/otlpgrpc-smoke ]]; then
    tmp=$dir.tmp.$$
    rm -rf "$tmp"
    mkdir -p "$tmp"
    echo "building tests/servers/otlpgrpc-smoke"
    (cd "$SERVERS_DIR/otlpgrpc-smoke" && go build -trimpath -o "$tmp/otlpgrpc-smoke" .)
    rm -rf "$dir"
    mv "$tmp" "$dir"
  fi
}

installed() {
  case $1 in
    elasticsearch) [[ -x $ES_HOME/bin/elasticsearch ]] ;;
    opensearch) [[ -x $OS_HOME/bin/opensearch ]] ;;
    loki) [[ -x $VL_BIN ]] ;;
    otelcol) [[ -x $(otelcol_dir)/dist/otelcol-epost && -x $(otlpgrpc_smoke_dir)/otlpgrpc-smoke ]] ;;
  esac
}

# ---------------------------------------------------------------------------
# start helpers
# ---------------------------------------------------------------------------
# spawn NAME SIGNATURE CMD...: start CMD in its own session (setsid, nohup),
# output to <logs>/NAME.log, pid file <pids>/NAME.pid.  Does not block.
spawn() {
  local name=$1 sig=$2 log=$LOGS/$1.log pidf=$PIDS/$1.pid
  shift 2
  [[ -f $log ]] && mv -f "$log" "$log.1"
  rm -f "$pidf" "$pidf.tmp"
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' spawn "$pidf.tmp" \
    nohup "$@" >"$log" 2>&1 </dev/null &
  for _ in $(seq 100); do
    [[ -s $pidf.tmp ]] && break
    sleep 0.05
  done
  [[ -s $pidf.tmp ]] || die "$name: could not start (no pid written)"
  printf '%s\n%s\n' "$(cat "$pidf.tmp")" "$sig" >"$pidf"
  rm -f "$pidf.tmp"
}

# link_home SRC DEST: a hard-linked copy of a distribution (from the cache)
# inside the run folder.  When up.sh runs as root, Elasticsearch/OpenSearch
# run as 'nobody', which cannot traverse a cache under /root (access(2)
# ignores capabilities), so they are started from this copy.  Hard links
# make it instant and take no space; a plain copy is the fallback.
link_home() {
  local src=$1 dest=$2
  [[ -x $dest/bin/$3 ]] && return 0
  rm -rf "$dest" "$dest.tmp"
  cp -al "$src" "$dest.tmp" 2>/dev/null || { rm -rf "$dest.tmp"; cp -a "$src" "$dest.tmp"; }
  mv "$dest.tmp" "$dest"
}

# give the service user ('nobody' when running as root) the folders it writes
# own_for_service RUN_SUBDIR WRITABLE_DIR...
own_for_service() {
  [[ $EUID -eq 0 ]] || return 0
  local top=$1
  shift
  chown -R "$(id -u nobody 2>/dev/null || echo 65534):$(id -g nobody 2>/dev/null || echo 65534)" "$@"
  # every folder above the run folder must be searchable by that user
  if ! "${RUNAS[@]}" test -r "$top/home/lib" -a -x "$top/home/lib"; then
    die "the run folder $RUN is not reachable by user 'nobody' (needed to run Elasticsearch/OpenSearch as root); set EPOST_SERVERS_RUN to a folder under a world-searchable path (e.g. /tmp/epost-servers)"
  fi
}

# run folder of a server; wiped when the pinned version changed
prepare_run_dir() {
  local d=$1 version=$2
  if [[ -f $d/VERSION && $(cat "$d/VERSION") != "$version" ]]; then
    say "$(basename "$d"): pinned version changed ($(cat "$d/VERSION") -> $version): wiping its test data $d"
    rm -rf "$d"
  fi
  mkdir -p "$d"
  echo "$version" >"$d/VERSION"
}

start_elasticsearch() {
  local d=$RUN/elasticsearch home java
  prepare_run_dir "$d" "$ES_VERSION"
  mkdir -p "$d/data" "$d/tmp" "$LOGS/elasticsearch"
  link_home "$ES_HOME" "$d/home" elasticsearch
  home=$d/home
  if [[ ! -f $d/config/jvm.options ]]; then
    mkdir -p "$d/config"
    cp -R "$home/config/." "$d/config/"
  fi
  cat >"$d/config/elasticsearch.yml" <<EOF
# written by tests/servers/up.sh -- edits are lost on the next start
cluster.name: epost-test-es
node.name: es-1
network.host: 127.0.0.1
http.port: 9200
transport.port: 9300
discovery.type: single-node
path.data: $d/data
path.logs: $LOGS/elasticsearch
xpack.security.enabled: false
action.destructive_requires_name: false
cluster.routing.allocation.disk.threshold_enabled: false
EOF
  mkdir -p "$d/config/jvm.options.d"
  printf -- '-Xms%s\n-Xmx%s\n' "${EPOST_ES_HEAP:-512m}" "${EPOST_ES_HEAP:-512m}" >"$d/config/jvm.options.d/epost.options"
  java=$(find_java "$ES_MIN_JAVA" "${ES_JAVA_HOME:-}")
  say "elasticsearch: starting $ES_VERSION with Java $(java_major "$java") ($java)"
  runas_prefix
  own_for_service "$d" "$d/data" "$d/tmp" "$d/config" "$LOGS/elasticsearch"
  spawn elasticsearch "$home" \
    env -u JAVA_HOME -u ES_JAVA_OPTS ES_JAVA_HOME="$java" ES_PATH_CONF="$d/config" ES_TMPDIR="$d/tmp" \
    "${RUNAS[@]}" "$home/bin/elasticsearch"
}

start_opensearch() {
  local d=$RUN/opensearch home java
  prepare_run_dir "$d" "$OPENSEARCH_VERSION"
  mkdir -p "$d/data" "$d/tmp" "$LOGS/opensearch"
  link_home "$OS_HOME" "$d/home" opensearch
  home=$d/home
  if [[ ! -f $d/config/log4j2.properties ]]; then
    mkdir -p "$d/config"
    cp -R "$home/config/." "$d/config/"
  fi
  # distribution jvm.options with the heap removed and the relative paths
  # (gc log, heap dumps, error file) pointed into the run folder
  sed -e '/^-Xm[sx]/d' \
    -e "s#file=logs/gc.log#file=$LOGS/opensearch/gc.log#" \
    -e "s#HeapDumpPath=data#HeapDumpPath=$d/tmp#" \
    -e "s#ErrorFile=logs/#ErrorFile=$LOGS/opensearch/#" \
    "$home/config/jvm.options" >"$d/config/jvm.options"
  mkdir -p "$d/config/jvm.options.d"
  printf -- '-Xms%s\n-Xmx%s\n' "${EPOST_OS_HEAP:-512m}" "${EPOST_OS_HEAP:-512m}" >"$d/config/jvm.options.d/epost.options"
  cat >"$d/config/opensearch.yml" <<EOF
# written by tests/servers/up.sh -- edits are lost on the next start
# (the integ-test zip has no security plugin: plain HTTP, no auth)
cluster.name: epost-test-os
node.name: os-1
network.host: 127.0.0.1
http.port: 9201
transport.port: 9301
discovery.type: single-node
path.data: $d/data
path.logs: $LOGS/opensearch
action.destructive_requires_name: false
cluster.routing.allocation.disk.threshold_enabled: false
EOF
  java=$(find_java "$OPENSEARCH_MIN_JAVA" "${OPENSEARCH_JAVA_HOME:-}")
  say "opensearch: starting $OPENSEARCH_VERSION with Java $(java_major "$java") ($java)"
  runas_prefix
  own_for_service "$d" "$d/data" "$d/tmp" "$d/config" "$LOGS/opensearch"
  spawn opensearch "$home" \
    env -u JAVA_HOME -u OPENSEARCH_JAVA_OPTS OPENSEARCH_JAVA_HOME="$java" \
    OPENSEARCH_PATH_CONF="$d/config" OPENSEARCH_TMPDIR="$d/tmp" \
    "${RUNAS[@]}" "$home/bin/opensearch"
}

start_loki() {
  local bin
  bin=$(readlink -f "$VL_BIN")
  mkdir -p "$RUN/loki-data"
  say "loki: starting VictoriaLogs $VICTORIALOGS_VERSION (Loki push API)"
  # -retentionPeriod=100y: entries older than now-retention are silently
  # dropped (HTTP 204 all the same); the E-Post logs are from 2008-2017.
  # -maxBackfillAge defaults to the retention period.
  spawn loki "$bin" "$bin" \
    -httpListenAddr=127.0.0.1:3100 \
    -storageDataPath="$RUN/loki-data" \
    -retentionPeriod=100y
}

start_otelcol() {
  local bin
  bin=$(readlink -f "$(otelcol_dir)/dist/otelcol-epost")
  mkdir -p "$(dirname "$OTELCOL_OUTPUT")"
  say "otelcol: starting the collector v$OTELCOL_VERSION (OTLP -> file + debug)"
  spawn otelcol "$bin" env OTELCOL_OUTPUT="$OTELCOL_OUTPUT" \
    "$bin" --config "$SERVERS_DIR/otelcol.yaml"
}

# ---------------------------------------------------------------------------
# readiness
# ---------------------------------------------------------------------------
ready_elasticsearch() { curl -fsS -m 5 -o /dev/null "$ES_URL/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null; }
ready_opensearch() { curl -fsS -m 5 -o /dev/null "$OS_URL/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null; }
ready_loki() { [[ $(curl -fsS -m 3 "$LOKI_URL/health" 2>/dev/null) == OK ]]; }
ready_otelcol() {
  port_open 4317 &&
    curl -fsS -m 3 -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' "$OTLP_HTTP_URL/v1/logs" 2>/dev/null
}

url_of() {
  case $1 in
    elasticsearch) echo "$ES_URL" ;;
    opensearch) echo "$OS_URL" ;;
    loki) echo "$LOKI_URL (push: $LOKI_URL/insert/loki/api/v1/push)" ;;
    otelcol) echo "grpc://$OTLP_GRPC_ADDR and $OTLP_HTTP_URL" ;;
  esac
}

# wait_all_ready NAME...: poll all started servers together (STARTED_AT
# holds their start times); report each as soon as it is ready
wait_all_ready() {
  local pending=("$@") left name pid
  while ((${#pending[@]})); do
    left=()
    for name in "${pending[@]}"; do
      pid=$(running_pid "$name" || true)
      if "ready_$name"; then
        say "$name: up on $(url_of "$name") (pid $pid) after $(($(now) - STARTED_AT[$name]))s"
      elif ! pid_alive "$pid"; then
        err "$name: the server exited during start-up"
        tail_log "$LOGS/$name.log" 40
        exit 1
      elif (($(now) - STARTED_AT[$name] > READY_TIMEOUT)); then
        err "$name: not ready after ${READY_TIMEOUT}s (pid $pid still running; stop it with tests/servers/down.sh $name)"
        tail_log "$LOGS/$name.log" 40
        exit 1
      else
        left+=("$name")
      fi
    done
    pending=("${left[@]}")
    ((${#pending[@]} == 0)) || sleep 0.5
  done
}

# ---------------------------------------------------------------------------
T_ALL=$(now)
declare -A STARTED_AT=()
for name in "${NAMES[@]}"; do
  if pid=$(running_pid "$name"); then
    if "ready_$name"; then
      say "$name: already up on $(url_of "$name") (pid $pid)"
    else
      say "$name: already started (pid $pid), waiting until it is ready"
      STARTED_AT[$name]=$(now)
    fi
    continue
  fi
  rm -f "$PIDS/$name.pid" # stale (process gone or pid reused)
  for p in $(server_ports "$name"); do
    if port_open "$p"; then
      die "$name: port 127.0.0.1:$p is already taken by a process that up.sh did not start
$(port_owner "$p")
stop that process (or its owner) first"
    fi
  done
  if [[ $name == otelcol ]]; then check_otelcol_manifest; fi
  installed "$name" || run_install "$name" "install_${name}_body"
  STARTED_AT[$name]=$(now)
  "start_$name"
done

WAIT=()
for name in "${NAMES[@]}"; do
  [[ -z ${STARTED_AT[$name]:-} ]] || WAIT+=("$name")
done
wait_all_ready "${WAIT[@]}"
for name in "${NAMES[@]}"; do
  [[ $name != otelcol ]] || echo "OTELCOL_OUTPUT=$OTELCOL_OUTPUT"
done
say "all requested servers are up (${NAMES[*]}) in $(($(now) - T_ALL))s; logs: $LOGS"

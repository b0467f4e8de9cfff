#!/usr/bin/env bash
# Build (on first use) the GATEWAY collector of deploy/gateway/ and print its path.
#
#   tests/servers/gateway.sh          prints GATEWAY_BIN=<path to otelcol-gateway>
#
# The collector is built with the OpenTelemetry Collector Builder (ocb) from
# deploy/gateway/builder.yaml (Elasticsearch, OTLP/HTTP, OTLP, load-balancing
# exporters, file_storage, health_check) and cached under
#   ${EPOST_SERVERS_CACHE:-~/.cache/epost-shipper/servers}/otelcol-gateway-<ver>-<manifest hash>/
# so it is rebuilt only when the manifest changes.  Versions: GATEWAY_* in
# tests/servers/versions.env.  The first build downloads and compiles a few
# hundred Go modules (27 min on the busy 2-core VM of docs/testing.md); the log is
# <run>/logs/install-gateway.log.  The gateways themselves are started by the
# test that needs them (tests/gateway.rs), not here: each test runs its own.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case ${1:-} in
  -h | --help)
    usage "$0"
    exit 0
    ;;
esac

MANIFEST=$REPO_DIR/deploy/gateway/builder.yaml
OCB_GW=$CACHE/ocb-v$GATEWAY_OTELCOL_VERSION/builder
EBPF=go.opentelemetry.io/ebpf-profiler

gateway_dir() {
  local h
  h=$(sha256sum <"$MANIFEST" | cut -c1-12)
  echo "$CACHE/otelcol-gateway-$GATEWAY_OTELCOL_VERSION-$h"
}

# every module at the pinned gateway release (filestorage at its own, see versions.env)
check_manifest() {
  local bad
  bad=$(grep -E '^\s*-?\s*gomod:' "$MANIFEST" |
    grep -v -E "v($GATEWAY_OTELCOL_VERSION|$GATEWAY_OTELCOL_STABLE_VERSION)\s*$" |
    grep -v -E "/filestorage v$GATEWAY_FILESTORAGE_VERSION\s*$" || true)
  [[ -z $bad ]] || die "deploy/gateway/builder.yaml has modules not at v$GATEWAY_OTELCOL_VERSION/v$GATEWAY_OTELCOL_STABLE_VERSION (versions.env):
$bad"
  grep -q "$EBPF => $EBPF $GATEWAY_EBPF_PROFILER_VERSION\s*$" "$MANIFEST" ||
    die "deploy/gateway/builder.yaml must replace $EBPF by $GATEWAY_EBPF_PROFILER_VERSION (versions.env)"
}

# The one module the checksum database does not know: download it without the
# database and compare its hash with the one pinned in versions.env.
fetch_ebpf_profiler() {
  local sum
  sum=$(cd "$CACHE" && GONOSUMDB=$EBPF GOFLAGS=-modcacherw go mod download -json "$EBPF@$GATEWAY_EBPF_PROFILER_VERSION" |
    sed -n 's/^\s*"Sum": "\(.*\)",\?$/\1/p')
  [[ $sum == "$GATEWAY_EBPF_PROFILER_H1" ]] ||
    die "$EBPF@$GATEWAY_EBPF_PROFILER_VERSION has hash '$sum', versions.env pins '$GATEWAY_EBPF_PROFILER_H1'"
  echo "$EBPF@$GATEWAY_EBPF_PROFILER_VERSION: $sum (as pinned)"
}

build() {
  go_env
  go version
  local dir tmp
  dir=$(gateway_dir)
  [[ -x $dir/dist/otelcol-gateway ]] && return 0 # built meanwhile by a concurrent run
  if [[ ! -x $OCB_GW ]]; then
    echo "go install $OTELCOL_BUILDER_MODULE@v$GATEWAY_OTELCOL_VERSION"
    tmp=$(dirname "$OCB_GW").tmp.$$
    rm -rf "$tmp"
    mkdir -p "$tmp"
    GOBIN=$tmp go install "$OTELCOL_BUILDER_MODULE@v$GATEWAY_OTELCOL_VERSION"
    rm -rf "$(dirname "$OCB_GW")"
    mv "$tmp" "$(dirname "$OCB_GW")"
  fi
  fetch_ebpf_profiler
  tmp=$dir.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp"
  cp "$MANIFEST" "$tmp/builder.yaml"
  echo "building the gateway collector with $OCB_GW"
  (cd "$tmp" && GONOSUMDB=$EBPF "$OCB_GW" --config builder.yaml)
  # the build must have used exactly the module checked above
  grep -q "^$EBPF $GATEWAY_EBPF_PROFILER_VERSION $GATEWAY_EBPF_PROFILER_H1\$" "$tmp/dist/go.sum" ||
    die "the gateway build did not use $EBPF $GATEWAY_EBPF_PROFILER_VERSION $GATEWAY_EBPF_PROFILER_H1"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  "$dir/dist/otelcol-gateway" components
}

check_manifest
BIN=$(gateway_dir)/dist/otelcol-gateway
if [[ ! -x $BIN ]]; then
  need_cmd go flock sha256sum
  mkdir -p "$CACHE" "$LOGS"
  log=$LOGS/install-gateway.log
  t0=$(date +%s)
  say "gateway: building the collector into $CACHE (first use; log: $log)" >&2
  set +e
  (
    set -e
    exec {fd}>"$CACHE/.lock-gateway"
    flock "$fd"
    build
  ) >"$log" 2>&1
  rc=$?
  set -e
  if ((rc != 0)); then
    rm -rf "$(gateway_dir)".tmp.*
    tail_log "$log" 60
    die "gateway: build failed (full log: $log)"
  fi
  say "gateway: built in $(($(date +%s) - t0))s" >&2
fi
echo "GATEWAY_BIN=$BIN"

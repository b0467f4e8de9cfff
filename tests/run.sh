#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   formatting, lints, then the real servers (installed on first use, cached), their smoke
#   tests, and every cargo test with the servers' addresses in the environment.
# Outside CI, EPOST_NO_SERVERS=1 skips the servers (the sink tests against them then say
# "skipping") and EPOST_NO_WINE=1 the Windows proof. Under CI (any non-empty CI; .ci/run sets
# it) both are errors, and every test that would skip fails instead: the servers' addresses,
# EPOST_TEST_OTELCOL_CONTROL, the shared samples and `unshare --time` must all be there.
# Each phase prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."

T0=$(date +%s)
T=$T0
took() { # took PHASE: the time since the last call
    local now
    now=$(date +%s)
    echo "-- $1: $((now - T)) s"
    T=$now
}
if [[ -n ${CI:-} ]]; then
  [[ ${EPOST_NO_SERVERS:-0} == 1 ]] && { echo "EPOST_NO_SERVERS=1 under CI: the real-server tests must run"; exit 1; }
  [[ ${EPOST_NO_WINE:-0} == 1 ]] && { echo "EPOST_NO_WINE=1 under CI: the Windows proof must run"; exit 1; }
fi

# The shared samples (tests/golden.rs): next to the repository, or next to its main worktree.
if [[ -z ${EPOST_SHARED_SAMPLES:-} ]]; then
  common=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  for d in ../shared/samples "${common:+$common/../../shared/samples}"; do
    if [[ -n $d && -d $d ]]; then
      EPOST_SHARED_SAMPLES=$(cd "$d" && pwd)
      export EPOST_SHARED_SAMPLES
      break
    fi
  done
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings
took "fmt and clippy"

if [[ ${EPOST_NO_SERVERS:-0} != 1 ]]; then
  echo "== real servers (tests/servers/up.sh)"
  trap 'tests/servers/down.sh >/dev/null 2>&1 || true' EXIT
  up_out=$(tests/servers/up.sh) || { echo "$up_out"; echo "starting the real servers failed"; exit 1; }
  echo "$up_out"
  export EPOST_TEST_ELASTICSEARCH=http://127.0.0.1:9200
  export EPOST_TEST_OPENSEARCH=http://127.0.0.1:9201
  export EPOST_TEST_LOKI=http://127.0.0.1:3100
  export EPOST_TEST_LOKI_PUSH_PATH=/insert/loki/api/v1/push
  export EPOST_TEST_OTLP_GRPC=http://127.0.0.1:4317
  export EPOST_TEST_OTLP_HTTP=http://127.0.0.1:4318
  EPOST_TEST_OTELCOL_OUTPUT=$(sed -n 's/^OTELCOL_OUTPUT=//p' <<<"$up_out" | tail -n1)
  [[ -n $EPOST_TEST_OTELCOL_OUTPUT ]] || { echo "up.sh printed no OTELCOL_OUTPUT="; exit 1; }
  export EPOST_TEST_OTELCOL_OUTPUT
  # the collector-restart tests may stop and start the collector (tests/servers/*.sh)
  export EPOST_TEST_OTELCOL_CONTROL=1
  # the gateway collector of deploy/gateway/ (built once, cached; tests/gateway.rs runs it)
  gw_out=$(tests/servers/gateway.sh) || { echo "$gw_out"; echo "building the gateway collector failed"; exit 1; }
  EPOST_TEST_GATEWAY_BIN=$(sed -n 's/^GATEWAY_BIN=//p' <<<"$gw_out" | tail -n1)
  export EPOST_TEST_GATEWAY_BIN
  took "real servers up"
  echo "== smoke tests of the real servers"
  tests/servers/smoke.sh
  took "smoke tests"
fi

# The dashboards' LogQL check (tests/dashboards.rs) parses with Grafana's grammar from npm:
# node and npm (Debian's packages on first use) and the pinned parser (npm ci).
echo "== node and the LogQL parser (tests/dashboards/setup.sh)"
tests/dashboards/setup.sh
took "LogQL parser"

echo "== cargo test"
cargo test --all-targets --no-fail-fast
took "cargo test"

# `report --html` in headless Chromium (installs chromium from Debian on first use)
echo "== report --html in headless Chromium (tests/report_html.sh)"
tests/report_html.sh
took "report html"

# The fuzz harness (examples/fuzz.rs, docs/testing.md "Fuzzing"): 1 M mutated log-shaped lines
# per kind, plus the redaction helpers, the JSON writer against serde_json and the checkpoint
# loader; any panic fails the run. EPOST_FUZZ_LINES overrides the count (the long run: 10 M).
echo "== fuzz (${EPOST_FUZZ_LINES:-1000000} lines per kind)"
cargo run --release --quiet --example fuzz -- --lines-per-kind "${EPOST_FUZZ_LINES:-1000000}"
took "fuzz"

# The Windows build, proven under Wine on a freshly booted machine (installs mingw-w64 and
# wine on first use). EPOST_NO_WINE=1 skips it, outside CI only.
if [[ ${EPOST_NO_WINE:-0} != 1 ]]; then
  echo "== Windows build under Wine (tests/wine/run.sh)"
  tests/wine/run.sh
  took "Wine"
fi
echo "== all phases: $(($(date +%s) - T0)) s"

#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   formatting, lints, then the real servers (installed on first use, cached), their smoke
#   tests, and every cargo test with the servers' addresses in the environment.
# EPOST_NO_SERVERS=1 skips the servers (the sink tests against them then skip themselves,
# except under CI=true, where they fail).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings

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
  export EPOST_TEST_OTELCOL_OUTPUT=$(sed -n 's/^OTELCOL_OUTPUT=//p' <<<"$up_out" | tail -n1)
  export EPOST_TEST_OTELCOL_CONTROL=1
  echo "== smoke tests of the real servers"
  tests/servers/smoke.sh
fi

echo "== cargo test"
cargo test --all-targets

# The Windows build, proven under Wine (installs mingw-w64 and wine on first use).
# EPOST_NO_WINE=1 skips it.
if [[ ${EPOST_NO_WINE:-0} != 1 ]]; then
  echo "== Windows build under Wine (tests/wine/run.sh)"
  tests/wine/run.sh
fi

#!/usr/bin/env bash
# Installs what the dashboards' LogQL check needs (tests/dashboards.rs,
# every_logql_expression_parses_with_grafanas_grammar): node and npm (Debian's packages, on
# first use), then Grafana's LogQL grammar, @grafana/lezer-logql, pinned by the committed
# package-lock.json, with `npm ci` into target/tmp/dashboards-npm (where the test looks; it
# runs the same `npm ci` itself when the folder is missing or the lock file changed).
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2
    return 1
  fi
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing nodejs and npm (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
fi

target=${CARGO_TARGET_DIR:-target}
dir=$target/tmp/dashboards-npm
mkdir -p "$dir"
if [[ -f $dir/node_modules/@grafana/lezer-logql/package.json ]] &&
  cmp -s tests/dashboards/package-lock.json "$dir/package-lock.json"; then
  echo "LogQL parser already installed in $dir"
else
  cp tests/dashboards/package.json tests/dashboards/package-lock.json tests/dashboards/parse_logql.mjs "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "LogQL parser installed in $dir (node $(node --version))"
fi
cp tests/dashboards/parse_logql.mjs "$dir/"

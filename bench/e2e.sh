#!/usr/bin/env bash
# End-to-end benchmark: backfill N generated E-Post lines (every kind, CP932, CRLF) from a
# fresh state into a sink, and report wall time, records/s, CPU seconds of the shipper
# (user+sys, from getrusage), CPU seconds per million records, and peak RSS.
#
#   bench/e2e.sh [LINES] [TARGET] [COMPRESSION]
#     LINES        default 1000000
#     TARGET       null (default: the Rust null _bulk endpoint of examples/null_endpoint.rs),
#                  null-loki, null-otlp-http, elasticsearch, opensearch, loki, otlp-grpc,
#                  otlp-http (the real servers: tests/servers/up.sh NAME first)
#     COMPRESSION  none (default for null targets) or gzip
#   EPOST_BENCH_PIPELINE='queue_segments = 8' adds keys to the [pipeline] table (experiments).
#   EPOST_BENCH_BIN=path measures that shipper binary instead of this tree's (an A/B run of an
#   older build on the same data and endpoint; its config keys must be the same).
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-1000000}
TARGET=${2:-null}
COMP=${3:-none}
NULL_ADDR=127.0.0.1:9299

cargo build --release --quiet --bin epost-shipper --example gen_mail --example null_endpoint
MAIL=target/bench/mail-$LINES
[[ -d $MAIL ]] || ./target/release/examples/gen_mail --lines "$LINES" --out "$MAIL"
RUN=target/bench/run-$TARGET-$COMP-$LINES
rm -rf "$RUN"
mkdir -p "$RUN"
ns="b$(date +%s)"
case $TARGET in
  null)
    sink="type = \"elasticsearch\"
url = \"http://$NULL_ADDR\"
compression = \"$COMP\"
template = false" ;;
  null-loki)
    sink="type = \"loki\"
url = \"http://$NULL_ADDR\"" ;;
  null-otlp-http)
    sink="type = \"otlp\"
endpoint = \"http://$NULL_ADDR\"
protocol = \"http/protobuf\"
compression = \"$COMP\"" ;;
  elasticsearch | opensearch)
    port=9200; [[ $TARGET == opensearch ]] && port=9201
    sink="type = \"elasticsearch\"
url = \"http://127.0.0.1:$port\"
namespace = \"$ns\"
compression = \"$COMP\"" ;;
  loki)
    sink="type = \"loki\"
url = \"http://127.0.0.1:3100\"
push_path = \"/insert/loki/api/v1/push\"
labels = { run = \"$ns\" }" ;;
  otlp-grpc)
    sink="type = \"otlp\"
endpoint = \"http://127.0.0.1:4317\"
compression = \"$COMP\"" ;;
  otlp-http)
    sink="type = \"otlp\"
endpoint = \"http://127.0.0.1:4318\"
protocol = \"http/protobuf\"
compression = \"$COMP\"" ;;
  *) echo "unknown target $TARGET" >&2; exit 2 ;;
esac
cat >"$RUN/shipper.toml" <<TOML
[source]
workdir = '$PWD/$MAIL'
state_dir = '$PWD/$RUN/state'
ignore_older_than = "100000d"

[metrics]
listen = ""

[pipeline]
${EPOST_BENCH_PIPELINE:-}

[[sink]]
$sink
TOML

null_pid=
if [[ $TARGET == null* ]]; then
  ./target/release/examples/null_endpoint "$NULL_ADDR" 2>/dev/null &
  null_pid=$!
  trap 'kill $null_pid 2>/dev/null || true' EXIT
  sleep 0.3
fi

# getrusage of the child: CPU and peak RSS of the shipper alone
python3 - "$RUN/shipper.toml" "$LINES" "$TARGET" "${EPOST_BENCH_BIN:-./target/release/epost-shipper}" <<'PY'
import resource, subprocess, sys, time
cfg, lines, target, shipper = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
t0 = time.monotonic()
p = subprocess.run([shipper, "--log-level", "warn", "backfill", "--config", cfg],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
if p.returncode != 0:
    print(p.stderr, file=sys.stderr)
    sys.exit(p.returncode)
done = [l for l in p.stderr.splitlines() if "backfill complete" in l]
records = int(done[-1].split()[2]) if done else 0
cpu = ru.ru_utime + ru.ru_stime
print(f"target={target} lines={lines} records={records}")
print(f"wall_s={wall:.2f} records_per_s={records / wall:,.0f}")
print(f"cpu_s={cpu:.2f} (user {ru.ru_utime:.2f} + sys {ru.ru_stime:.2f}) cpu_s_per_million_records={cpu / max(records, 1) * 1e6:.2f}")
print(f"peak_rss_mib={ru.ru_maxrss / 1024:.1f}")
PY
if [[ -n $null_pid ]]; then
  echo "null endpoint: $(curl -s http://$NULL_ADDR/_stats)"
fi

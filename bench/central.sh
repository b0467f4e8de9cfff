#!/usr/bin/env bash
# Central collection: ONE shipper over HOSTS mail folders (as it would see \\server\mail
# shares), each with the 12 kinds of examples/gen_mail.rs under its own COMPUTERNAME.
#
#   bench/central.sh [HOSTS] [LINES_PER_HOST] [IDLE_SECONDS]    (default 30 20000 60)
#   POLL=2s MAX_OPEN=512 (the [source] poll_interval and max_open_files)
#
# 1. backfill: every host's LINES_PER_HOST lines (3 days) into the null _bulk endpoint
#    (examples/null_endpoint.rs); prints wall time, records/s, CPU-s (getrusage), peak RSS;
# 2. idle: `run` over the same folders and state (nothing left to read), while every host
#    gets one line a second in one of its 12 kinds (HOSTS lines/s in all, each of the
#    HOSTS x 12 "today" files written every 12 s); after 30 s to settle, the shipper's
#    CPU over IDLE_SECONDS from /proc, its open file descriptors and RSS.
# Release build; figures in docs/scaling.md.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-30}
PER_HOST=${2:-20000}
SECS=${3:-60}
NULL_ADDR=127.0.0.1:9298
kinds="acceptlog inlog receivelog outlog outlocallog faillog senderlog pop3log receivepop3 imap4log receiveimap4 maildblog"

cargo build --release --quiet --bin epost-shipper --example gen_mail --example null_endpoint
DIR=target/bench/central-$HOSTS-$PER_HOST
BASE=target/bench/mail-$PER_HOST
[[ -d $BASE ]] || ./target/release/examples/gen_mail --lines "$PER_HOST" --out "$BASE"
rm -rf "$DIR"
mkdir -p "$DIR/hosts"
workdirs=""
for ((h = 1; h <= HOSTS; h++)); do
  host=$(printf 'MAILSV%02d' "$h")
  w=$DIR/hosts/$host
  mkdir -p "$w"
  for k in $kinds; do
    mkdir -p "$w/$k"
    # hard links: the same bytes under another COMPUTERNAME, no disk or copy time
    cp -al "$BASE/$k/MAILSV01" "$w/$k/$host"
  done
  workdirs+="'$PWD/$w', "
done
cat >"$DIR/shipper.toml" <<TOML
[source]
workdirs = [${workdirs%, }]
state_dir = '$PWD/$DIR/state'
ignore_older_than = "100000d"
# as config/central.toml: polling (file events do not cross SMB), and a handle for every
# host's "today" file of every kind (HOSTS x 12)
poll_interval = "${POLL:-2s}"
max_open_files = ${MAX_OPEN:-512}
[metrics]
listen = ""
[[sink]]
type = "elasticsearch"
url = "http://$NULL_ADDR"
compression = "none"
template = false
TOML

./target/release/examples/null_endpoint "$NULL_ADDR" 2>/dev/null &
null_pid=$!
pid=
writer=
cleanup() {
  # the shipper first, while the null endpoint still answers its last batches
  for p in $writer $pid; do kill "$p" 2>/dev/null || true; done
  [[ -z $pid ]] || wait "$pid" 2>/dev/null || true
  kill "$null_pid" 2>/dev/null || true
}
trap cleanup EXIT
sleep 0.3

echo "== backfill: $HOSTS hosts x 12 kinds, $PER_HOST lines per host"
python3 - "$DIR/shipper.toml" <<'PY'
import resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.run(["./target/release/epost-shipper", "--log-level", "warn", "backfill", "--config", sys.argv[1]],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
if p.returncode != 0:
    print(p.stderr, file=sys.stderr)
    sys.exit(p.returncode)
done = [l for l in p.stderr.splitlines() if "backfill complete" in l]
records = int(done[-1].split()[2]) if done else 0
cpu = ru.ru_utime + ru.ru_stime
print(f"records={records} wall_s={wall:.2f} records_per_s={records / wall:,.0f}")
print(f"cpu_s={cpu:.2f} cpu_s_per_million_records={cpu / max(records, 1) * 1e6:.2f} peak_rss_mib={ru.ru_maxrss / 1024:.1f}")
PY
echo "files: $(find "$DIR/hosts" -name '*.log' | wc -l)"

echo "== idle: run, one line a second per host, CPU over ${SECS}s"
./target/release/epost-shipper --log-level warn run --config "$DIR/shipper.toml" &
pid=$!
(
  set +e
  i=0
  while :; do
    for ((h = 1; h <= HOSTS; h++)); do
      host=$(printf 'MAILSV%02d' "$h")
      set -- $kinds
      shift $(((i + h) % 12))
      printf '[04/Nov/2017:09:00:%02d], (mx), [1.2.3.4]:25, Client accept now.\r\n' $((i % 60)) \
        >>"$DIR/hosts/$host/$1/$host/171104.log"
    done
    i=$((i + 1))
    sleep 1
  done
) &
writer=$!
sleep 30
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
sleep "$SECS"
t1=$(ticks)
fds=$(find "/proc/$pid/fd" -mindepth 1 | wc -l)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
python3 -c "c = ($t1 - $t0) / $hz; print(f'cpu_s over ${SECS}s: {c:.2f} -> cpu_s_per_hour: {c * 3600 / $SECS:.1f} ({c / $SECS * 100:.1f} % of one core)')"
echo "open_fds: $fds  rss_mib: $((rss / 1024))  files: $(find "$DIR/hosts" -name '*.log' | wc -l)"

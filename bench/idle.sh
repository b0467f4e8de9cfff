#!/usr/bin/env bash
# Idle cost of tailing: 365 old daily files per kind (12 kinds) plus today's file of each
# kind receiving one line a second; after catching up, measure the shipper's CPU over
# SECONDS (default 60) from /proc, and its open file handles.
#
#   bench/idle.sh [SECONDS]
#   EPOST_BENCH_BIN=path measures that shipper binary instead (an A/B run of an older build).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
cargo build --release --quiet --bin epost-shipper
DIR=target/bench/idle
rm -rf "$DIR"
mkdir -p "$DIR"
kinds="acceptlog inlog receivelog outlog outlocallog faillog senderlog pop3log receivepop3 imap4log receiveimap4 maildblog"
python3 - "$DIR/mail" $kinds <<'PY'
import datetime, os, sys
root, kinds = sys.argv[1], sys.argv[2:]
today = datetime.date(2017, 12, 31)
for k in kinds:
    d = os.path.join(root, k, "MAILSV01")
    os.makedirs(d, exist_ok=True)
    for i in range(365, 0, -1):
        day = today - datetime.timedelta(days=i)
        p = os.path.join(d, day.strftime("%y%m%d.log"))
        with open(p, "wb") as f:
            f.write(b"[%s:08:00:00], (mx), [1.2.3.4]:25, Client accept now.\r\n" % day.strftime("%d/%b/%Y").encode())
        # as on a real server: last written on its day
        t = datetime.datetime(day.year, day.month, day.day, 23, 59).timestamp()
        os.utime(p, (t, t))
PY
cat >"$DIR/shipper.toml" <<TOML
[source]
workdir = '$PWD/$DIR/mail'
state_dir = '$PWD/$DIR/state'
ignore_older_than = "100000d"
[metrics]
listen = ""
[[sink]]
type = "file"
path = '$PWD/$DIR/out.ndjson'
TOML
"${EPOST_BENCH_BIN:-./target/release/epost-shipper}" --log-level warn run --config "$DIR/shipper.toml" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
# today's files, one line a second each
(
  for ((i = 0; i < SECS + 40; i++)); do
    for k in $kinds; do
      printf '[31/Dec/2017:09:00:%02d], (mx), [1.2.3.4]:25, Client accept now.\r\n' $((i % 60)) >>"$DIR/mail/$k/MAILSV01/171231.log"
    done
    sleep 1
  done
) &
writer=$!
# catch up with the 4380 old files, and let yesterday's handles close (close_inactive 5m is
# the default; idle here means: nothing but today's trickle)
sleep 30
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
sleep "$SECS"
t1=$(ticks)
fds=$(ls /proc/$pid/fd | wc -l)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
kill $writer 2>/dev/null || true
cpu=$(python3 -c "print(f'{($t1 - $t0) / $hz:.2f}')")
per_hour=$(python3 -c "print(f'{($t1 - $t0) / $hz * 3600 / $SECS:.1f}')")
echo "files: $(find "$DIR/mail" -name '*.log' | wc -l) (12 kinds x 365 old + 12 active)"
echo "cpu_s over ${SECS}s: $cpu  -> cpu_s_per_hour: $per_hour"
echo "open_fds: $fds  rss_mib: $((rss / 1024))"
echo "records shipped: $(wc -l <"$DIR/out.ndjson")"

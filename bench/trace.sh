#!/usr/bin/env bash
# `trace` on a busy server's day: generates one day of coherent mail traffic of about SIZE MB
# (examples/gen_flow.rs; every kind, CP932, CRLF, receivelog sessions), then times `trace`
# for a local id, an e-mail address and an IP on one core (taskset -c 0), with
# a warm page cache (the second of two runs is reported).
#
#   bench/trace.sh [MESSAGES]      default 400000 (about 1 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-400000}
cargo build --release --quiet --bin epost-shipper --example gen_flow
MAIL=target/bench/flow-$MESSAGES
[[ -d $MAIL ]] || ./target/release/examples/gen_flow --out "$MAIL" --messages "$MESSAGES" --seed 11 --days 1
bytes=$(du -sb "$MAIL" | cut -f1)
echo "folder: $MAIL, $((bytes / 1000000)) MB, $(find "$MAIL" -type f -name '*.log' | wc -l) files"
# a delivered message from the middle of the day, its client IP and sender
read -r id ip from < <(python3 - "$MAIL/journeys.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
m = j["messages"]
pick = m[len(m) // 2]
print(pick.get("local_id") or pick.get("id"), pick.get("client_ip", "-"), pick.get("from", "-"))
PY
)
echo "queries: id=$id ip=$ip from=$from"
for q in "$id" "$from" "$ip"; do
  [[ $q == "-" ]] && continue
  for run in 1 2; do
    out=$( { /usr/bin/time -f "%e s wall, %U+%S s CPU, %M KiB peak RSS" \
      taskset -c 0 ./target/release/epost-shipper trace "$q" "$MAIL" >/dev/null; } 2>&1 | tail -n1)
  done
  echo "trace $q: $out"
done

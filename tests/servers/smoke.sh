#!/usr/bin/env bash
# shellcheck disable=SC2015 # "a && b || { show; return 1; }" is meant
# Smoke tests proving that the servers started by up.sh are the real thing.
#
#   tests/servers/smoke.sh [elasticsearch] [opensearch] [loki] [otelcol]   (default: all)
#
# Every run uses fresh markers, so data left over from earlier runs cannot
# make a check pass.  Prints one PASS/FAIL line per check and closes with
# "N passed, N failed"; exits 1 if anything failed.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_names "$@"
need_cmd curl jq

PASSED=0
FAILED=0
RUN_ID=$(date +%s)-$$-$RANDOM
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pass() {
  PASSED=$((PASSED + 1))
  say "PASS $1"
}
fail() {
  FAILED=$((FAILED + 1))
  say "FAIL $1"
  [[ -z ${2:-} ]] || printf '     %s\n' "$2" | cut -c1-600
}

# check NAME CMD...: runs CMD; its stdout is shown when it fails
check() {
  local _label=$1 out rc
  shift
  set +e
  out=$("$@" 2>&1)
  rc=$?
  set -e
  if ((rc == 0)); then pass "$_label"; else fail "$_label" "$out"; fi
}

# poll SECONDS CMD...: retry CMD until it succeeds
poll() {
  local secs=$1 t0
  shift
  t0=$(date +%s)
  until "$@"; do
    (($(date +%s) - t0 < secs)) || return 1
    sleep 0.3
  done
}

is_running() {
  if ! running_pid "$1" >/dev/null; then
    fail "$1: server is running" "not started by up.sh (run tests/servers/up.sh $1)"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# Elasticsearch / OpenSearch: a plain index and a data stream
# ---------------------------------------------------------------------------
search_engine_checks() {
  local name=$1 url=$2 marker="smoke-$RUN_ID" idx="epost-smoke-$RUN_ID"
  is_running "$name" || return 0
  local J=(-sS -m 30 -H 'Content-Type: application/json')

  # 1. plain index: index a document, refresh, find it by a phrase search
  index_and_search() {
    curl "${J[@]}" -fX PUT "$url/$idx" -d '{"settings":{"number_of_shards":1,"number_of_replicas":0}}' >/dev/null &&
      curl "${J[@]}" -fX POST "$url/$idx/_doc" \
        -d "{\"@timestamp\":\"2008-03-04T05:06:07Z\",\"message\":\"hello from smoke.sh $marker\"}" >/dev/null &&
      curl "${J[@]}" -fX POST "$url/$idx/_refresh" >/dev/null &&
      curl "${J[@]}" -fX POST "$url/$idx/_search" \
        -d "{\"query\":{\"match_phrase\":{\"message\":\"$marker\"}}}" >"$TMP/$name-search.json" &&
      jq -e --arg m "$marker" '.hits.total.value == 1 and (.hits.hits[0]._source.message | contains($m))' \
        "$TMP/$name-search.json" >/dev/null || { cat "$TMP/$name-search.json" 2>/dev/null; return 1; }
  }
  check "$name: index a document and find it with a search ($url/$idx)" index_and_search
  curl "${J[@]}" -X DELETE "$url/$idx" >/dev/null || true

  # 2. data stream: index template with data_stream, create-only bulk into
  #    logs-epost.smoke-default (one stream reused by every run: the ES
  #    integ-test zip has no API to delete data streams), search by marker
  local ds=logs-epost.smoke-default
  data_stream() {
    curl "${J[@]}" -fX PUT "$url/_index_template/epost-smoke" -d '{
        "index_patterns":["logs-epost.smoke-*"], "data_stream":{}, "priority":500,
        "template":{"settings":{"number_of_replicas":0}}}' >/dev/null &&
      printf '%s\n%s\n' '{"create":{}}' \
        "{\"@timestamp\":\"2017-11-12T13:14:15Z\",\"message\":\"data stream $marker\"}" |
      curl -sS -m 30 -f -H 'Content-Type: application/x-ndjson' -X POST "$url/$ds/_bulk?refresh=true" \
        --data-binary @- >"$TMP/$name-bulk.json" &&
      jq -e '.errors == false and (.items[0].create._index | startswith(".ds-logs-epost.smoke-default"))' \
        "$TMP/$name-bulk.json" >/dev/null &&
      curl "${J[@]}" -fX POST "$url/$ds/_search" \
        -d "{\"query\":{\"match_phrase\":{\"message\":\"$marker\"}}}" >"$TMP/$name-ds.json" &&
      jq -e '.hits.total.value == 1' "$TMP/$name-ds.json" >/dev/null ||
      { cat "$TMP/$name-bulk.json" "$TMP/$name-ds.json" 2>/dev/null; return 1; }
  }
  check "$name: data stream $ds (template + bulk create + search)" data_stream
}

# ---------------------------------------------------------------------------
# Loki push API (VictoriaLogs)
# ---------------------------------------------------------------------------
loki_checks() {
  local marker="smoke-$RUN_ID" ts
  is_running loki || return 0
  ts=$(date -u -d 2008-03-04T05:06:07Z +%s)000000000
  push() {
    curl -sS -m 30 -f -X POST "$LOKI_URL/insert/loki/api/v1/push" -H 'Content-Type: application/json' \
      -d "{\"streams\":[{\"stream\":{\"job\":\"epost-smoke\",\"log\":\"inlog\",\"run\":\"$RUN_ID\"},
           \"values\":[[\"$ts\",\"loki push smoke $marker\",{\"queue_id\":\"Q$RUN_ID\"}]]}]}"
  }
  check "loki: push one line (JSON, 2008 timestamp) to $LOKI_URL/insert/loki/api/v1/push" push

  found() {
    curl -sS -m 10 -f "$LOKI_URL/select/logsql/query" \
      --data-urlencode "query={job=\"epost-smoke\",run=\"$RUN_ID\"} \"$marker\"" >"$TMP/loki.json" &&
      jq -e -s --arg m "$marker" --arg q "Q$RUN_ID" 'length == 1 and (.[0]._msg | contains($m))
        and .[0]._time == "2008-03-04T05:06:07Z" and .[0].queue_id == $q and .[0].log == "inlog"' \
        "$TMP/loki.json" >/dev/null
  }
  read_back() { poll 15 found || { cat "$TMP/loki.json" 2>/dev/null; return 1; }; }
  check "loki: read it back with LogsQL (stream labels, structured metadata, _time)" read_back

  count() {
    curl -sS -m 10 -f "$LOKI_URL/select/logsql/query" \
      --data-urlencode "query={job=\"epost-smoke\",run=\"$RUN_ID\"} | stats count() as n" >"$TMP/loki-count.json" &&
      jq -e '.n == "1"' "$TMP/loki-count.json" >/dev/null || { cat "$TMP/loki-count.json"; return 1; }
  }
  check "loki: count the stream's entries ({...} | stats count())" count
}

# ---------------------------------------------------------------------------
# OpenTelemetry Collector: OTLP/HTTP JSON and OTLP/gRPC -> file exporter
# ---------------------------------------------------------------------------
otelcol_checks() {
  local mh="smoke-http-$RUN_ID" mg="smoke-grpc-$RUN_ID" ts client
  is_running otelcol || return 0
  ts=$(date -u -d 2017-11-12T13:14:15Z +%s)000000000

  send_http() {
    curl -sS -m 30 -f -X POST "$OTLP_HTTP_URL/v1/logs" -H 'Content-Type: application/json' -d '{
      "resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"epost-shipper-smoke"}}]},
        "scopeLogs":[{"scope":{"name":"smoke.sh"},"logRecords":[{"timeUnixNano":"'"$ts"'",
          "severityNumber":9,"severityText":"INFO","body":{"stringValue":"otlp http smoke '"$mh"'"},
          "attributes":[{"key":"smoke.transport","value":{"stringValue":"http"}}]}]}]}]}'
  }
  check "otelcol: OTLP/HTTP JSON POST $OTLP_HTTP_URL/v1/logs" send_http

  client=$(otlpgrpc_smoke_dir)/otlpgrpc-smoke
  send_grpc() {
    [[ -x $client ]] || { echo "otlpgrpc-smoke client not built (run tests/servers/up.sh otelcol)"; return 1; }
    "$client" -endpoint "$OTLP_GRPC_ADDR" -marker "$mg"
  }
  check "otelcol: OTLP/gRPC Export to $OTLP_GRPC_ADDR" send_grpc

  in_file() { # marker: a JSON line of the output whose log body carries it
    [[ -f $OTELCOL_OUTPUT ]] &&
      grep -F -- "$1" "$OTELCOL_OUTPUT" | jq -e --arg m "$1" \
        '.resourceLogs[].scopeLogs[].logRecords[] | select(.body.stringValue | contains($m))' >/dev/null 2>&1
  }
  check "otelcol: HTTP record found in file output $OTELCOL_OUTPUT" poll 15 in_file "$mh"
  check "otelcol: gRPC record found in file output $OTELCOL_OUTPUT" poll 15 in_file "$mg"
}

for name in "${NAMES[@]}"; do
  case $name in
    elasticsearch) search_engine_checks elasticsearch "$ES_URL" ;;
    opensearch) search_engine_checks opensearch "$OS_URL" ;;
    loki) loki_checks ;;
    otelcol) otelcol_checks ;;
  esac
done

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))

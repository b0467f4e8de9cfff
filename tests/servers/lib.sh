# shellcheck shell=bash
# shellcheck disable=SC2034 # variables used by the scripts that source this
# Shared helpers for tests/servers/{up,down,smoke,status}.sh -- sourced, not run.
#
# Layout
#   cache (downloads/builds, survives fresh clones):
#     ${EPOST_SERVERS_CACHE:-$HOME/.cache/epost-shipper/servers}
#       m2/                          Maven local repository (zips, maven plugins)
#       go/mod go/build              GOMODCACHE / GOCACHE of the Go builds
#       elasticsearch-<ver>/         unzipped integ-test distribution
#       opensearch-<ver>/            unzipped integ-test distribution
#       victorialogs-<ver>/victoria-logs
#       ocb-v<ver>/builder           OpenTelemetry Collector Builder
#       otelcol-<ver>-<hash>/dist/otelcol-epost
#       otlpgrpc-smoke-<hash>/otlpgrpc-smoke   (gRPC client used by smoke.sh)
#   run state (data, logs, pid files):
#     ${EPOST_SERVERS_RUN:-<repo>/target/servers}
#       logs/   all logs: <name>.log (console), elasticsearch/ opensearch/
#               (the servers' own log folders), install-<name>.log
#       pids/   <name>.pid: line 1 = pid (also the process group id, the
#               process is started with setsid), line 2 = a path that must
#               appear in /proc/<pid>/cmdline for the pid to still be ours
#       elasticsearch/ opensearch/  config/ data/ tmp/ VERSION
#       loki-data/                  VictoriaLogs storage
#       otelcol/output.jsonl        file-exporter output

SERVERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SERVERS_DIR/../.." && pwd)
# shellcheck source=versions.env
source "$SERVERS_DIR/versions.env"

ALL_SERVERS=(elasticsearch opensearch loki otelcol)

CACHE=${EPOST_SERVERS_CACHE:-$HOME/.cache/epost-shipper/servers}
RUN=${EPOST_SERVERS_RUN:-$REPO_DIR/target/servers}
LOGS=$RUN/logs
PIDS=$RUN/pids
# seconds to wait for a server to become ready
READY_TIMEOUT=${EPOST_SERVERS_TIMEOUT:-240}

ES_HOME=$CACHE/elasticsearch-$ES_VERSION
OS_HOME=$CACHE/opensearch-$OPENSEARCH_VERSION
VL_BIN=$CACHE/victorialogs-$VICTORIALOGS_VERSION/victoria-logs
OCB_BIN=$CACHE/ocb-v$OTELCOL_VERSION/builder
OTELCOL_OUTPUT=$RUN/otelcol/output.jsonl

ES_URL=http://127.0.0.1:9200
OS_URL=http://127.0.0.1:9201
LOKI_URL=http://127.0.0.1:3100
OTLP_HTTP_URL=http://127.0.0.1:4318
OTLP_GRPC_ADDR=127.0.0.1:4317

# usage SCRIPT: print the comment block at the top of SCRIPT
usage() { awk 'NR > 1 && /^#/ { if ($0 !~ /shellcheck/) { sub(/^# ?/, ""); print }; next } NR > 1 { exit }' "$1"; }

say() { printf '%s\n' "$*"; }
err() { printf 'ERROR: %s\n' "$*" >&2; }
die() { err "$*"; exit 1; }

# ports each server listens on (all on 127.0.0.1)
server_ports() {
  case $1 in
    elasticsearch) echo "9200 9300" ;;
    opensearch) echo "9201 9301" ;;
    loki) echo "3100" ;;
    otelcol) echo "4317 4318" ;;
  esac
}

check_names() {
  local n ok a
  for n in "$@"; do
    ok=
    for a in "${ALL_SERVERS[@]}"; do [[ $n == "$a" ]] && ok=1; done
    [[ -n $ok ]] || die "unknown server '$n' (known: ${ALL_SERVERS[*]})"
  done
}

# parse_names "$@": prints the calling script's header for -h/--help, else sets NAMES to the
# servers named (default: all) after checking them.
parse_names() {
  case ${1:-} in
    -h | --help)
      usage "${BASH_SOURCE[1]}"
      exit 0
      ;;
  esac
  NAMES=("$@")
  ((${#NAMES[@]})) || NAMES=("${ALL_SERVERS[@]}")
  check_names "${NAMES[@]}"
}

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "'$c' is needed but not installed"
  done
}

# --- Go builds: self-contained module/build caches inside $CACHE -----------
go_env() {
  need_cmd go
  export GOMODCACHE=$CACHE/go/mod
  export GOCACHE=$CACHE/go/build
  export GOFLAGS="${GOFLAGS:-} -modcacherw"
  export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
  export CGO_ENABLED=0
}

# cache folders keyed by the content of the build inputs (rebuilt when they change)
otelcol_dir() {
  local h
  h=$(cat "$SERVERS_DIR/otelcol-builder.yaml" | sha256sum | cut -c1-12)
  echo "$CACHE/otelcol-$OTELCOL_VERSION-$h"
}

otlpgrpc_smoke_dir() {
  local h
  h=$(cd "$SERVERS_DIR/otlpgrpc-smoke" && cat go.mod go.sum main.go | sha256sum | cut -c1-12)
  echo "$CACHE/otlpgrpc-smoke-$h"
}

# --- process helpers --------------------------------------------------------
# alive = exists and is not a zombie (an exited server whose parent has not
# reaped it yet still answers kill -0)
pid_alive() {
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [[ -n $st && $st != Z ]]
}

cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# pid_is_ours PID SIGNATURE: alive and its command line contains SIGNATURE
pid_is_ours() {
  pid_alive "$1" || return 1
  [[ $(cmdline_of "$1") == *"$2"* ]]
}

# read_pidfile NAME -> sets PF_PID PF_SIG (empty if no file)
read_pidfile() {
  PF_PID='' PF_SIG=''
  local f=$PIDS/$1.pid
  [[ -f $f ]] || return 1
  { read -r PF_PID || true; read -r PF_SIG || true; } <"$f"
  [[ $PF_PID =~ ^[0-9]+$ ]] || { PF_PID=; return 1; }
}

# running_pid NAME: prints the pid if the server started by up.sh is alive
running_pid() {
  read_pidfile "$1" || return 1
  pid_is_ours "$PF_PID" "$PF_SIG" || return 1
  echo "$PF_PID"
}

# pids in process group PGID (the servers are started with setsid, so the
# group holds the server and the children it started, e.g. the ES server JVM)
group_pids() {
  ps -e -o pid=,pgid= | awk -v g="$1" '$2 == g { print $1 }'
}

# sum of RSS (KiB) of a process group
group_rss_kib() {
  ps -e -o pgid=,rss= | awk -v g="$1" '$1 == g { s += $2 } END { print s + 0 }'
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

port_owner() {
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$1" 2>/dev/null | head -3
  fi
}

tail_log() {
  local f=$1 n=${2:-40}
  if [[ -f $f ]]; then
    echo "----- last $n lines of $f -----" >&2
    tail -n "$n" "$f" >&2
    echo "-----" >&2
  fi
}

# --- Java ----------------------------------------------------------------
java_major() {
  local home=$1 v=
  if [[ -f $home/release ]]; then
    v=$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$home/release")
  fi
  if [[ -z $v && -x $home/bin/java ]]; then
    v=$("$home/bin/java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -1)
  fi
  [[ -n $v ]] || return 1
  v=${v#1.}
  echo "${v%%[.+-]*}"
}

# find_java MIN [EXPLICIT_HOME]: prints the JDK home with the LOWEST major
# version >= MIN (so Java 17 is tried before 21/25).  An explicit home (from
# ES_JAVA_HOME / OPENSEARCH_JAVA_HOME) wins if it is new enough.
find_java() {
  local min=$1 explicit=${2:-} h m best='' bestm=999
  if [[ -n $explicit ]]; then
    m=$(java_major "$explicit") || die "no usable JDK at $explicit"
    ((m >= min)) || die "JDK at $explicit is Java $m; Java $min or newer is needed"
    echo "$explicit"
    return
  fi
  local cands=()
  [[ -n ${JAVA_HOME:-} ]] && cands+=("$JAVA_HOME")
  if command -v java >/dev/null 2>&1; then
    cands+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
  fi
  for h in /usr/lib/jvm/*/ /opt/java/*/ /opt/jdk*/; do
    [[ -x ${h}bin/java ]] && cands+=("${h%/}")
  done
  for h in "${cands[@]}"; do
    [[ -x $h/bin/java ]] || continue
    h=$(readlink -f "$h")
    m=$(java_major "$h") || continue
    if ((m >= min && m < bestm)); then best=$h bestm=$m; fi
  done
  [[ -n $best ]] || die "no JDK with Java >= $min found (looked in JAVA_HOME, PATH, /usr/lib/jvm)"
  echo "$best"
}

# When running as root, Elasticsearch/OpenSearch refuse to start ("can not
# run elasticsearch as root").  They are then run as 'nobody' with the
# DAC-override capabilities (ambient), so they can read the cache under
# /root and write the run folder without chown-ing anything.
runas_prefix() {
  RUNAS=()
  if [[ $EUID -eq 0 ]]; then
    need_cmd setpriv
    local u g
    u=$(id -u nobody 2>/dev/null || echo 65534)
    g=$(id -g nobody 2>/dev/null || echo 65534)
    # shellcheck disable=SC2054 # the commas belong to setpriv's arguments
    RUNAS=(setpriv "--reuid=$u" "--regid=$g" --clear-groups
      --inh-caps=+dac_override,+dac_read_search
      --ambient-caps=+dac_override,+dac_read_search --)
  fi
}

# --- Maven ------------------------------------------------------------------
# maven_fetch_zip G:A:V DESTDIR -> copies the zip into DESTDIR
maven_fetch_zip() {
  need_cmd mvn
  local gav=$1 dest=$2
  mkdir -p "$dest" "$CACHE/m2"
  mvn -B -q --no-transfer-progress -Dstyle.color=never \
    -Dmaven.repo.local="$CACHE/m2" \
    "org.apache.maven.plugins:maven-dependency-plugin:$MAVEN_DEPENDENCY_PLUGIN_VERSION:copy" \
    -Dartifact="$gav:zip" -DoutputDirectory="$dest" -Dmdep.overWriteReleases=true
}

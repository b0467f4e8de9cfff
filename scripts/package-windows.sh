#!/usr/bin/env bash
# Builds the Windows package from a Debian/Ubuntu machine:
#   target/dist/epost-shipper-<version>-windows-x86_64.zip   (version from Cargo.toml)
#     epost-shipper-<version>-windows-x86_64/
#       epost-shipper.exe   release build of scripts/build-windows.sh, stripped
#       shipper.toml        packaging/windows/shipper.toml (for C:\mail, commented), CRLF
#       README.txt          packaging/windows/README.txt (Japanese and English), UTF-8 with BOM, CRLF
#       install.cmd         check, service install, sc start (elevated), CRLF
#       uninstall.cmd       service uninstall (stops it first), CRLF
#   target/dist/epost-shipper-<version>-windows-x86_64.msi   the same files in
#     C:\Program Files\epost-shipper, the service registered and started (packaging/windows/
#     epost-shipper.wxs, built with wixl from Debian's msitools)
# Installs what is missing (mingw-w64 and the Rust target via build-windows.sh; zip, wixl via
# apt-get). Prints the paths of what it made, one a line, the zip first.
#
#   scripts/package-windows.sh            zip and MSI
#   scripts/package-windows.sh --no-msi   the zip only
#
# CARGO_TARGET_DIR is honoured (default: target/ in the repository).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
msi=true
for arg in "$@"; do
    case "$arg" in
        --no-msi) msi=false ;;
        -h | --help)
            sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "package-windows.sh: unknown argument '$arg' (see --help)" >&2
            exit 2
            ;;
    esac
done

say() { echo "package-windows: $*" >&2; }
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        say "need root to run: $*"
        return 1
    fi
}
apt_install() { # apt_install PACKAGE...: Debian packages, once
    command -v apt-get >/dev/null 2>&1 || {
        say "no apt-get: install $* by hand"
        return 1
    }
    say "installing $* (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
}

# The version: the first `version = "..."` of Cargo.toml, which is [package]'s.
VERSION=$(sed -n 's/^version = "\([^"]*\)"/\1/p' Cargo.toml | head -n 1)
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || {
    say "cannot read a x.y.z version from Cargo.toml (got '$VERSION')"
    exit 1
}
NAME="epost-shipper-$VERSION-windows-x86_64"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DIST="$TARGET_DIR/dist"
STAGE="$DIST/$NAME"
SRC="$ROOT/packaging/windows"

command -v zip >/dev/null 2>&1 || apt_install zip
say "building the release exe (scripts/build-windows.sh)"
EXE=$(scripts/build-windows.sh | tail -n 1)
[ -f "$EXE" ] || {
    say "scripts/build-windows.sh made no $EXE"
    exit 1
}

rm -rf "$STAGE" "$DIST/$NAME.zip" "$DIST/$NAME.msi"
mkdir -p "$STAGE"
# The release profile keeps line tables (debug = 1) for backtraces during development; the
# package does without them (a quarter of the size).
x86_64-w64-mingw32-strip -o "$STAGE/epost-shipper.exe" "$EXE"
crlf() { # crlf SRC DEST: LF to CRLF (Notepad before Windows 10 1809 shows LF files on one line)
    sed -e 's/\r$//' -e 's/$/\r/' "$1" >"$2"
}
crlf "$SRC/shipper.toml" "$STAGE/shipper.toml"
crlf "$SRC/install.cmd" "$STAGE/install.cmd"
crlf "$SRC/uninstall.cmd" "$STAGE/uninstall.cmd"
# A BOM, so that every Notepad reads the Japanese as UTF-8 (the config stays BOM-less: TOML).
{
    printf '\xef\xbb\xbf'
    sed "s/@VERSION@/$VERSION/" "$SRC/README.txt" | sed -e 's/\r$//' -e 's/$/\r/'
} >"$STAGE/README.txt"

# The example config must be one `check` accepts: checked here by the Linux build, with
# C:\mail (as the bundled example folder) and the ProgramData paths mapped to a scratch
# folder; the keys and values are the package's own. Exit 2 (a config error) fails the
# package; 1 (a sink or file problem, which the service lives with) is shown.
cargo build --quiet --bin epost-shipper >&2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r examples/mail "$scratch/mail"
mkdir -p "$scratch/state"
sed -e "s|'C:\\\\mail'|'$scratch/mail'|" -e "s|'C:\\\\ProgramData\\\\epost-shipper\\\\|'$scratch/state/|" \
    -e "s|^\\[source\\]|[source]\\nstate_dir = '$scratch/state'|" \
    "$STAGE/shipper.toml" >"$scratch/shipper.toml"
rc=0
"$TARGET_DIR/debug/epost-shipper" check --config "$scratch/shipper.toml" >"$scratch/check.out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
    cat "$scratch/check.out" >&2
    [ "$rc" -eq 2 ] && {
        say "the example shipper.toml does not pass check's config validation"
        exit 1
    }
    say "check of the example shipper.toml exited $rc (not a config error)"
fi

(cd "$DIST" && zip -q -X -r "$NAME.zip" "$NAME")
echo "$DIST/$NAME.zip"

$msi || exit 0
command -v wixl >/dev/null 2>&1 || apt_install wixl msitools
# (in the staging folder: wixl takes the File/@Source paths relative to where it runs)
(cd "$STAGE" && wixl --arch x64 -D Version="$VERSION" -o "$DIST/$NAME.msi" "$SRC/epost-shipper.wxs") >&2 || {
    say "wixl failed to build the MSI"
    exit 1
}
echo "$DIST/$NAME.msi"

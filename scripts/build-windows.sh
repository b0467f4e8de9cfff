#!/usr/bin/env bash
# Builds epost-shipper.exe for Windows (x86_64-pc-windows-gnu) on a Debian/Ubuntu machine,
# from scratch: installs what is missing (Debian's mingw-w64, the Rust target), then builds.
# Idempotent; writes nothing outside the repository except those installs (no global cargo
# config: the linker and C compiler are given through environment variables below).
#
#   scripts/build-windows.sh                 release build; prints the path of the .exe
#   scripts/build-windows.sh --debug         debug build
#   scripts/build-windows.sh --clippy        cargo clippy for the Windows target (-D warnings)
#   scripts/build-windows.sh --setup-only    install the toolchain, build nothing
#
# CARGO_TARGET_DIR is honoured (default: target/ in the repository); the .exe lands in
# $CARGO_TARGET_DIR/x86_64-pc-windows-gnu/{release,debug}/epost-shipper.exe.
set -euo pipefail

TARGET=x86_64-pc-windows-gnu
MINGW_GCC=x86_64-w64-mingw32-gcc
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

mode=release
for arg in "$@"; do
    case "$arg" in
        --debug) mode=debug ;;
        --release) mode=release ;;
        --clippy) mode=clippy ;;
        --setup-only) mode=setup ;;
        -h | --help)
            sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "build-windows.sh: unknown argument '$arg' (see --help)" >&2
            exit 2
            ;;
    esac
done

say() { echo "build-windows: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        say "need root to run: $*"
        return 1
    fi
}

# 1. The MinGW-w64 cross compiler (linker, and the C compiler `ring` needs).
if ! command -v "$MINGW_GCC" >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        say "$MINGW_GCC is missing and there is no apt-get: install MinGW-w64 by hand"
        exit 1
    fi
    say "installing mingw-w64 (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mingw-w64
fi

# 2. The Rust standard library for the target.
if ! command -v rustup >/dev/null 2>&1; then
    say "rustup is missing: install Rust from https://rustup.rs first"
    exit 1
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
    say "adding the Rust target $TARGET (rustup)"
    rustup target add "$TARGET"
fi
if [ "$mode" = clippy ] && ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add clippy
fi

[ "$mode" = setup ] && { say "toolchain ready"; exit 0; }

# 3. Build. Environment only: nothing is written to ~/.cargo/config.toml.
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER="$MINGW_GCC"
export CC_x86_64_pc_windows_gnu="$MINGW_GCC"
export AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

case "$mode" in
    clippy)
        cargo clippy --target "$TARGET" --all-targets -- -D warnings
        ;;
    debug)
        cargo build --target "$TARGET" --bin epost-shipper
        echo "$TARGET_DIR/$TARGET/debug/epost-shipper.exe"
        ;;
    release)
        cargo build --release --target "$TARGET" --bin epost-shipper
        echo "$TARGET_DIR/$TARGET/release/epost-shipper.exe"
        ;;
esac

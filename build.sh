#!/usr/bin/env bash
# librmq quick start. On a fresh Debian 12 machine (as root, or with sudo):
#   ./build.sh run    install what is missing, configure meson into build/, build, run the demo
#   ./build.sh test   the same set-up, then every test suite
# Other commands: ./build.sh build (set-up and build only), ./build.sh deps (packages only).
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DIR=${BUILD_DIR:-build}
# Packages the build and the tests need (Debian names).
BUILD_PKGS=(meson ninja-build pkg-config gcc g++ libssl-dev libzstd-dev zlib1g-dev libcriterion-dev)
# Interop tests drive real third-party RocketMQ clients from npm: node and npm are needed
# as commands (a nodesource nodejs bundles npm and conflicts with Debian's npm package).
test_pkgs() {
    command -v node >/dev/null || echo nodejs
    command -v npm >/dev/null || echo npm
}

missing_pkgs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"
    done
}

install_pkgs() {
    local missing
    missing=$(missing_pkgs "$@")
    [[ -z $missing ]] && return 0
    echo "build.sh: installing:" $missing >&2
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "build.sh: need root (or sudo) to install:" $missing >&2; exit 1; }
        sudo=sudo
    fi
    # shellcheck disable=SC2086
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
}

setup() {
    if command -v dpkg-query >/dev/null; then install_pkgs "${BUILD_PKGS[@]}" "$@"; fi
    if [[ ! -f $BUILD_DIR/build.ninja ]]; then
        meson setup "$BUILD_DIR" ${MESON_ARGS:-}
    fi
    ninja -C "$BUILD_DIR"
}

case ${1:-} in
run)
    setup
    exec "$BUILD_DIR/examples/demo" "${@:2}"
    ;;
test)
    # shellcheck disable=SC2046
    setup $(test_pkgs)
    meson test -C "$BUILD_DIR" --print-errorlogs ${MESON_TEST_ARGS:-}
    ;;
build)
    setup
    ;;
deps)
    # shellcheck disable=SC2046
    install_pkgs "${BUILD_PKGS[@]}" $(test_pkgs)
    ;;
*)
    echo "usage: ./build.sh run | test | build | deps" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Builds the Wine runtime support of the Windows lab with mingw-w64:
#   bcryptprimitives.dll  ProcessPrng for Rust programs (Wine 8.0 lacks the DLL)
#   winscard.dll          the WinSCard bridge to the lab's pcscd (Wine's own is a stub)
# into target/lab-windows/<arch>/ of the repository, and prints that folder.
# Usage: bash lab/windows/build.sh [x86_64|i686|all]   (default x86_64)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

build() {
    local arch=$1 cc="$1-w64-mingw32-gcc" out="$root/target/lab-windows/$1"
    command -v "$cc" >/dev/null 2>&1 || {
        echo "build.sh: $cc not found: apt-get install -y gcc-mingw-w64-${arch/_/-}" >&2
        exit 1
    }
    mkdir -p "$out"
    # Up to date: nothing to do (every lab run under Wine calls this).
    if [ -f "$out/winscard.dll" ] && [ -z "$(find "$here" -newer "$out/winscard.dll" -type f)" ]; then
        echo "$out"
        return
    fi
    # Exports are listed in .def files under their undecorated names, as Windows' own DLLs
    # export them; on i686 the stdcall fixup maps them to the decorated symbols (name@N).
    local flags=(-O2 -Wall -Wextra -Werror -shared -static-libgcc -Wl,--enable-stdcall-fixup -D_WIN32_WINNT=0x0601)
    "$cc" "${flags[@]}" -o "$out/bcryptprimitives.dll" \
        "$here/bcryptprimitives/bcryptprimitives.c" "$here/bcryptprimitives/bcryptprimitives.def" -ladvapi32
    "$cc" "${flags[@]}" -o "$out/winscard.dll" \
        "$here/winscard/winscard.c" "$here/winscard/winscard.def" -lws2_32
    echo "$out"
}

case "${1:-x86_64}" in
    x86_64 | i686) build "${1:-x86_64}" ;;
    all) build x86_64 && build i686 ;;
    *) echo "usage: bash lab/windows/build.sh [x86_64|i686|all]" >&2; exit 2 ;;
esac

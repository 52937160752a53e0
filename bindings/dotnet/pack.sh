#!/usr/bin/env bash
# The NuGet package, target/nuget/ScardManage.VERSION.nupkg (VERSION: the crate's), packed by
# Debian's nuget (2.8, on Mono) from ScardManage.nuspec:
#   lib/net45/ScardManage.dll                    the managed assembly (ScardManage.cs, by mcs)
#   runtimes/linux-x64/native/libscardmanage.so  the library, `cargo build --release`
#   runtimes/win-x64/native/scardmanage.dll      from target/windows/x86_64 (.ci/build-windows)
#   runtimes/win-x86/native/scardmanage.dll      from target/windows/i686, if built
# The Windows DLLs are packed when their folders exist, so build them first for a package that
# has them.    bash bindings/dotnet/pack.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
target=${CARGO_TARGET_DIR:-$PWD/target}
case "$(uname -m)" in
    x86_64) rid=linux-x64 ;;
    aarch64) rid=linux-arm64 ;;
    *) echo "pack.sh: no .NET runtime identifier known for $(uname -m)" >&2; exit 1 ;;
esac

cargo build --quiet --release -p scardmanage
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib/net45" "$stage/runtimes/$rid/native"
# The assembly's version is the crate's. Demo.cs, the binding's test, also checks internals
# (NativeMethods): built as ScardManage.Demo.exe it is the one friend assembly.
cat >"$stage/AssemblyInfo.cs" <<CS
[assembly: System.Reflection.AssemblyVersion("$version")]
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("ScardManage.Demo")]
CS
mcs -warnaserror -target:library -out:"$stage/lib/net45/ScardManage.dll" bindings/dotnet/ScardManage.cs "$stage/AssemblyInfo.cs"
# DllImport("scardmanage") is libscardmanage.so to .NET's and Mono's loaders; the file itself,
# since the package has no symlinks.
cp "$target/release/libscardmanage.so" "$stage/runtimes/$rid/native/libscardmanage.so"
packed=("$rid")
for pair in x86_64:win-x64 i686:win-x86; do
    dll=target/windows/${pair%%:*}/bin/scardmanage.dll
    if [ -f "$dll" ]; then
        mkdir -p "$stage/runtimes/${pair#*:}/native"
        cp "$dll" "$stage/runtimes/${pair#*:}/native/"
        packed+=("${pair#*:}")
    fi
done
cp bindings/dotnet/ScardManage.nuspec "$stage/"
mkdir -p target/nuget
rm -f "target/nuget/ScardManage.$version.nupkg"
nuget pack "$stage/ScardManage.nuspec" -BasePath "$stage" -Version "$version" -OutputDirectory target/nuget \
    -NonInteractive -Verbosity quiet >"$stage/nuget.log" 2>&1 || { cat "$stage/nuget.log" >&2; exit 1; }
[ -f "target/nuget/ScardManage.$version.nupkg" ] || { cat "$stage/nuget.log" >&2; exit 1; }
echo "target/nuget/ScardManage.$version.nupkg: lib/net45, runtimes ${packed[*]}"

#!/usr/bin/env bash
# Builds scardmanage in release and installs it like a system library:
#   PREFIX/lib/libscardmanage.so.X.Y.Z, .so.0 (the soname) and .so (for -lscardmanage)
#   PREFIX/lib/libscardmanage.a
#   PREFIX/include/scardmanage.h, scardmanage.hpp
#   PREFIX/lib/pkgconfig/scardmanage.pc
#   PREFIX/lib/cmake/scardmanage/scardmanageConfig.cmake (+ ConfigVersion)
#   PREFIX/bin/scm, the command-line tool (the library linked in: it needs only libpcsclite)
#
#   bash install.sh --prefix /usr/local      (DESTDIR=... is honoured, for packagers)
set -euo pipefail

prefix=
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (usage: install.sh --prefix DIR)" >&2; exit 2 ;;
    esac
done
[ -n "$prefix" ] || { echo "usage: install.sh --prefix DIR" >&2; exit 2; }
# A relative --prefix or DESTDIR is the caller's: resolved before leaving its directory.
case "$prefix" in /*) ;; *) prefix="$PWD/$prefix" ;; esac
destdir=${DESTDIR:-}
case "$destdir" in "" | /*) ;; *) destdir="$PWD/$destdir" ;; esac
cd "$(dirname "$0")"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}
target=${CARGO_TARGET_DIR:-$PWD/target}
# One build for both: built apart, the second rebuilds the build script's dependencies.
cargo build --release -p scardmanage -p scardmanage-cli

dest="$destdir$prefix"
libdir="$dest/lib"
install -d "$libdir/pkgconfig" "$libdir/cmake/scardmanage" "$dest/include" "$dest/bin"
install -m 0755 "$target/release/scm" "$dest/bin/scm"
install -m 0755 "$target/release/libscardmanage.so" "$libdir/libscardmanage.so.$version"
ln -sfn "libscardmanage.so.$version" "$libdir/libscardmanage.so.$major"
ln -sfn "libscardmanage.so.$major" "$libdir/libscardmanage.so"
install -m 0644 "$target/release/libscardmanage.a" "$libdir/libscardmanage.a"
install -m 0644 include/scardmanage.h include/scardmanage.hpp "$dest/include/"

# What a program linking the static archive needs besides it (rustc --print native-static-libs,
# minus the C library and libgcc_s that every C link brings anyway).
static_libs="-lpcsclite -lutil -lrt -lpthread -lm -ldl"

# pkg-config splits its flags into words as a shell does: a space (or quote, or backslash) in the
# prefix is escaped, else -I/opt/my prefix/include would be two words.
pc_prefix=$(printf '%s\n' "$prefix" | sed 's/[\\ "'"'"']/\\&/g')
cat > "$libdir/pkgconfig/scardmanage.pc" <<EOF
prefix=$pc_prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: scardmanage
Description: The Windows ISCardManage interface as a C ABI over PC/SC
Version: $version
Libs: -L\${libdir} -lscardmanage
Libs.private: $static_libs
Cflags: -I\${includedir}
EOF

cat > "$libdir/cmake/scardmanage/scardmanageConfig.cmake" <<EOF
# scardmanage $version: find_package(scardmanage) gives the imported targets
#   scardmanage::scardmanage         the shared library (soname libscardmanage.so.$major)
#   scardmanage::scardmanage_static  the static archive, with the system libraries it needs
# The prefix is found from this file's place, so the installed tree can move.
get_filename_component(_scardmanage_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

if(NOT TARGET scardmanage::scardmanage)
  add_library(scardmanage::scardmanage SHARED IMPORTED)
  set_target_properties(scardmanage::scardmanage PROPERTIES
    IMPORTED_LOCATION "\${_scardmanage_prefix}/lib/libscardmanage.so.$version"
    IMPORTED_SONAME "libscardmanage.so.$major"
    INTERFACE_INCLUDE_DIRECTORIES "\${_scardmanage_prefix}/include")
endif()

if(NOT TARGET scardmanage::scardmanage_static)
  add_library(scardmanage::scardmanage_static STATIC IMPORTED)
  set_target_properties(scardmanage::scardmanage_static PROPERTIES
    IMPORTED_LOCATION "\${_scardmanage_prefix}/lib/libscardmanage.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${_scardmanage_prefix}/include"
    INTERFACE_LINK_LIBRARIES "$(echo "$static_libs" | sed 's/-l//g; s/ /;/g')")
endif()

set(scardmanage_VERSION "$version")
unset(_scardmanage_prefix)
EOF

cat > "$libdir/cmake/scardmanage/scardmanageConfigVersion.cmake" <<EOF
# Compatible when the ABI's major version (the soname's) is the same and the installed copy is
# at least as new as the one asked for.
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION_MAJOR STREQUAL "$major" AND NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
elseif(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
else()
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
endif()
EOF

echo "installed scardmanage $version into $dest"

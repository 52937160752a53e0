"""The package's build: the shared library put inside the package, and the optional C extension.

The library comes from, in order:
  SCARDMANAGE_BUNDLE   the absolute path of a library already built (libscardmanage.so, .dylib, or a
                       Windows scardmanage.dll: the wheel is then a Windows one, win_amd64 or
                       win32 as the DLL's own header says, and has no extension);
  the crate            SCARDMANAGE_CRATE, else the repository this directory is in
                       (../..), built with `cargo build --release -p scardmanage`;
  nothing              when neither is there (a copy of this directory alone): the package then
                       loads the library the system's loader finds, as it says when imported.
A wheel is always a platform wheel: the library inside is one platform's. Its tag is py3-none-PLAT
without the extension, the interpreter's own tag with it.

Without a C compiler or Python's headers the build of the extension fails quietly
(optional=True) and the package calls the library through ctypes only, with the same API and
the same errors.
"""

import json
import os
import shutil
import struct
import subprocess
import sys

from setuptools import Distribution, Extension, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools before 70.1 has it from the wheel package
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
# The file names scardmanage/__init__.py looks for next to itself, first.
PACKAGED_NAME = {".dll": "scardmanage.dll", ".dylib": "libscardmanage.0.dylib", ".so": "libscardmanage.so.0"}
# IMAGE_FILE_HEADER.Machine of a PE file, to the wheel platform Python names Windows by.
PE_PLATFORMS = {0x8664: "win_amd64", 0x014C: "win32", 0xAA64: "win_arm64"}


def _suffix(path):
    for suffix in PACKAGED_NAME:
        if path.endswith(suffix) or (suffix == ".so" and ".so." in os.path.basename(path)):
            return suffix
    sys.exit("SCARDMANAGE_BUNDLE=%s: not a .so, .dylib or .dll" % path)


def _pe_platform(path):
    """The wheel platform of a Windows DLL, read from its PE header (so that the tag cannot
    disagree with the file)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:2] != b"MZ":
        sys.exit("SCARDMANAGE_BUNDLE=%s: not a Windows DLL" % path)
    pe = struct.unpack_from("<I", head, 0x3C)[0]
    if head[pe : pe + 4] != b"PE\0\0":
        sys.exit("SCARDMANAGE_BUNDLE=%s: no PE header" % path)
    machine = struct.unpack_from("<H", head, pe + 4)[0]
    if machine not in PE_PLATFORMS:
        sys.exit("SCARDMANAGE_BUNDLE=%s: unknown machine 0x%04x" % (path, machine))
    return PE_PLATFORMS[machine]


def _crate_dir():
    explicit = os.environ.get("SCARDMANAGE_CRATE")
    candidate = explicit or os.path.join(HERE, "..", "..")
    manifest = os.path.join(candidate, "Cargo.toml")
    if os.path.exists(manifest):
        with open(manifest, encoding="utf-8") as f:
            if '\nname = "scardmanage"\n' in f.read():
                return os.path.abspath(candidate)
    if explicit:
        sys.exit("SCARDMANAGE_CRATE=%s: no scardmanage crate there" % explicit)
    return None


def _cargo_build(crate):
    """Builds the crate's release library and returns the cdylib's path, as cargo reports it
    (so CARGO_TARGET_DIR and the platform's file name are cargo's business)."""
    cargo = os.environ.get("CARGO", "cargo")
    command = [cargo, "build", "--release", "-p", "scardmanage", "--message-format=json-render-diagnostics"]
    print("scardmanage: building the library: %s (in %s)" % (" ".join(command), crate), file=sys.stderr)
    try:
        out = subprocess.run(command, cwd=crate, stdout=subprocess.PIPE, check=True).stdout
    except FileNotFoundError:
        sys.exit("scardmanage: cargo (a Rust toolchain) is needed to build the library, or set SCARDMANAGE_BUNDLE")
    except subprocess.CalledProcessError as e:
        sys.exit("scardmanage: cargo build failed (exit %d)" % e.returncode)
    for line in out.decode().splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and "cdylib" in message["target"]["kind"]:
            if message["target"]["name"] == "scardmanage":
                for path in message["filenames"]:
                    if path.endswith((".so", ".dylib", ".dll")):
                        return path
    sys.exit("scardmanage: cargo built no shared library")


BUNDLE = os.environ.get("SCARDMANAGE_BUNDLE")
# pip runs this in its own directory (or a copy): a relative path would not be the caller's.
if BUNDLE and not (os.path.isabs(BUNDLE) and os.path.isfile(BUNDLE)):
    sys.exit("SCARDMANAGE_BUNDLE=%s: not the absolute path of a file" % BUNDLE)
WINDOWS_PLATFORM = _pe_platform(BUNDLE) if BUNDLE and _suffix(BUNDLE) == ".dll" else None


def _library():
    """(source path, name inside the package), or None."""
    if BUNDLE:
        return BUNDLE, PACKAGED_NAME[_suffix(BUNDLE)]
    crate = _crate_dir()
    if crate is None:
        print(
            "scardmanage: no crate at %s and no SCARDMANAGE_BUNDLE: the package will load the "
            "library the system's loader finds" % os.path.join(HERE, "..", ".."),
            file=sys.stderr,
        )
        return None
    built = _cargo_build(crate)
    return built, PACKAGED_NAME[_suffix(built)]


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        # pip builds in place and build/lib outlives a build: a library or extension left there
        # by an earlier one (Linux's, in a Windows wheel after it) would be packed again.
        package = os.path.join(self.build_lib, "scardmanage")
        for name in os.listdir(package):
            if name in PACKAGED_NAME.values() or name.startswith("_fast."):
                os.remove(os.path.join(package, name))
        library = _library()
        if library:
            source, name = library
            target = os.path.join(self.build_lib, "scardmanage", name)
            shutil.copyfile(source, target)  # the file itself, not a symlink to the build
            os.chmod(target, 0o755)


class PlatformDistribution(Distribution):
    def has_ext_modules(self):
        """True even without the extension: the library inside is one platform's, so the wheel
        is a platform wheel and its files go to platlib."""
        return True


class PlatformWheel(bdist_wheel):
    def finalize_options(self):
        if WINDOWS_PLATFORM and not self.plat_name:
            self.plat_name = WINDOWS_PLATFORM
        super().finalize_options()

    def get_tag(self):
        impl, abi, plat = super().get_tag()
        build_ext = self.get_finalized_command("build_ext")
        if not any(os.path.exists(path) for path in build_ext.get_outputs()):
            impl, abi = "py3", "none"  # ctypes only: any Python 3 of that platform
        return impl, abi, plat


setup(
    distclass=PlatformDistribution,
    cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel},
    # A Windows DLL is packed on another platform: an extension built here would be this one's.
    ext_modules=[] if WINDOWS_PLATFORM else [Extension("scardmanage._fast", ["scardmanage/_fast.c"], optional=True)],
)

//! For a Windows target: compiles `idl/scardmanage.idl` with mingw-w64's `widl` into the type
//! library, the C/C++ header `scardmanage_com.h` and the GUID file `scardmanage_com_i.c` (all in
//! OUT_DIR, where `.ci/build-com` picks the last two up for C/C++ clients), and links the type
//! library into the DLL as resource TYPELIB 1 (through `windres`), where `LoadTypeLib` on the
//! DLL's path and registration find it. Elsewhere the crate is empty and this does nothing.
//!
//! Tools and inputs (Debian's packages; `.ci/install-windows-deps` installs them):
//! `<arch>-w64-mingw32-widl` (mingw-w64-tools), `<arch>-w64-mingw32-windres` (binutils-mingw-w64),
//! the system IDL files `oaidl.idl`/`ocidl.idl` (libwine-dev; another folder through
//! `SCM_COM_IDL_INCLUDE`) and `stdole2.tlb` for `importlib` (wine64; another folder through
//! `SCM_COM_STDOLE_DIR`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=idl");
    println!("cargo:rerun-if-env-changed=SCM_COM_IDL_INCLUDE");
    println!("cargo:rerun-if-env-changed=SCM_COM_STDOLE_DIR");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let (prefix, width) = match arch.as_str() {
        "x86_64" => ("x86_64-w64-mingw32", "--win64"),
        "x86" => ("i686-w64-mingw32", "--win32"),
        other => panic!("no COM server build for Windows on {other}"),
    };
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let include =
        std::env::var("SCM_COM_IDL_INCLUDE").unwrap_or_else(|_| "/usr/include/wine/wine/windows".into());
    let stdole = std::env::var("SCM_COM_STDOLE_DIR")
        .unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows".into());

    let tlb = out.join("scardmanage.tlb");
    run(Command::new(format!("{prefix}-widl"))
        .arg(width)
        .arg(format!("-I{include}"))
        .arg(format!("-I{}", dir.join("idl").display()))
        .arg(format!("-L{stdole}"))
        .arg("-t")
        .arg("-T")
        .arg(&tlb)
        .arg("-h")
        .arg("-H")
        .arg(out.join("scardmanage_com.h"))
        .arg("-u")
        .arg("-U")
        .arg(out.join("scardmanage_com_i.c"))
        .arg(dir.join("idl/scardmanage.idl")));

    // The type library as resource 1 of type TYPELIB: where LoadTypeLib("…\\scardmanage_com.dll")
    // and RegisterTypeLib look by default.
    let rc = out.join("typelib.rc");
    std::fs::write(&rc, format!("1 TYPELIB \"{}\"\n", forward_slashes(&tlb))).expect("OUT_DIR is writable");
    let object = out.join("typelib.o");
    run(Command::new(format!("{prefix}-windres"))
        .arg("-O")
        .arg("coff")
        .arg("-i")
        .arg(&rc)
        .arg("-o")
        .arg(&object));
    println!("cargo:rustc-link-arg-cdylib={}", object.display());
}

/// windres reads the .rc's strings with C escapes: a path is written with forward slashes.
fn forward_slashes(path: &Path) -> String {
    path.display().to_string().replace('\\', "/")
}

fn run(command: &mut Command) {
    let status = command.status().unwrap_or_else(|e| {
        panic!("cannot run {:?} ({e}); .ci/install-windows-deps installs it", command.get_program())
    });
    assert!(status.success(), "{command:?} failed: {status}");
}

//! Generates the C header from the source into OUT_DIR (a build script must not write into the
//! source tree, or `cargo package` fails); `tests/header.rs` fails when the committed
//! `include/scardmanage.h` differs from it. Also gives the shared library its soname.

use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let mut header = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("the header generates")
        .write(&mut header);
    let header = String::from_utf8(header).expect("the header is UTF-8");
    let header = attributes_in_hex(&hresults_in_hex(&header));
    std::fs::write(out_dir.join("scardmanage.h"), header).expect("OUT_DIR is writable");

    // The ABI's major version is in the soname, so that an incompatible release installs beside
    // this one. Only ELF platforms have sonames.
    if std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux" || os.ends_with("bsd")) {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libscardmanage.so.0");
    }
}

/// cbindgen writes `0x80100068u32 as i32` as `(int32_t)2148532328u`; C programmers read and grep
/// HRESULTs in hex, in the form the Windows headers use: `((scm_hresult)0x80100068)`.
fn hresults_in_hex(header: &str) -> String {
    const CAST: &str = "(int32_t)";
    let mut out = String::with_capacity(header.len());
    let mut rest = header;
    while let Some(start) = rest.find(CAST) {
        let after = &rest[start + CAST.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match (after[..digits].parse::<u32>(), after[digits..].starts_with('u')) {
            (Ok(value), true) => {
                out.push_str(&rest[..start]);
                out.push_str(&format!("((scm_hresult)0x{value:08X})"));
                rest = &after[digits + 1..];
            }
            _ => {
                out.push_str(&rest[..start + CAST.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reader attributes and `SCM_WAIT_INFINITE` are read in hex (`0x00090303`, as `reader.h` and
/// `winsmcrd.h` build them from a class and a tag); cbindgen writes every integer in decimal.
fn attributes_in_hex(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    for line in header.split_inclusive('\n') {
        let hex = ["#define SCM_ATTR_", "#define SCM_WAIT_INFINITE "]
            .iter()
            .any(|prefix| line.starts_with(prefix))
            .then(|| line.trim_end().rsplit_once(' '))
            .flatten()
            .and_then(|(name, value)| Some(format!("{name} 0x{:08X}\n", value.parse::<u32>().ok()?)));
        out.push_str(hex.as_deref().unwrap_or(line));
    }
    out
}

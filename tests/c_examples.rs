//! The C examples, built the way a C user builds them (strict C99 against the committed header
//! and the shared library), run against the lab; and the header compiled as C++.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::lease_with_card;

const STRICT_C: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo put `libscardmanage.so` for this build: beside the test binary, in `<dir>/deps`.
/// (`<dir>` itself gets a copy only from `cargo build`, so on a fresh target directory it has
/// none, and after an older build it has a stale one.)
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

/// A folder with the library under its soname, as an installed copy would have it.
fn soname_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-examples");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["libscardmanage.so", "libscardmanage.so.0"] {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(library_dir().join("libscardmanage.so"), &link).unwrap();
    }
    dir
}

/// The C and C++ compilers for the target the tests were built for: `CC` and `CXX` when set (a
/// cross run sets them, e.g. to `i686-linux-gnu-gcc` for a 32-bit library), else the host's.
fn compiler(variable: &str, default: &str) -> Command {
    Command::new(std::env::var_os(variable).unwrap_or_else(|| default.into()))
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Built once per process: the tests of this file run in parallel.
fn build_demo() -> &'static Path {
    static DEMO: OnceLock<PathBuf> = OnceLock::new();
    DEMO.get_or_init(build_demo_once)
}

fn build_demo_once() -> PathBuf {
    let libs = soname_dir();
    let exe = libs.join("demo");
    run(compiler("CC", "cc")
        .args(STRICT_C)
        .arg("-I")
        .arg(repo().join("include"))
        .arg(repo().join("c-examples/demo.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&libs)
        .arg(format!("-Wl,-rpath,{}", libs.display()))
        .arg("-lscardmanage"));
    exe
}

#[test]
fn demo_runs_against_the_lab() {
    let demo = build_demo();
    let lease = lease_with_card();
    let output = run(Command::new(demo).arg(lease.name()));
    let stdout = String::from_utf8(output.stdout).unwrap();
    print!("{stdout}");
    for line in [
        &format!("scardmanage {}", env!("CARGO_PKG_VERSION")),
        &format!("reader: {}", lease.name()),
        &format!("attached to {}", lease.name()),
        "state 6 (specific), protocol 2",
        "ATR: 3B 80 01 81",
        "SELECT -> 90 00",
        "reconnected: state 6 (specific)",
        "detached",
    ] {
        assert!(stdout.lines().any(|l| l == line), "missing line {line:?} in:\n{stdout}");
    }
    let challenge = stdout.lines().find(|l| l.starts_with("GET CHALLENGE ->")).expect("a challenge");
    assert!(challenge.ends_with(" 90 00") && challenge.split(' ').count() == 3 + 10, "{challenge}");
    assert_eq!(lease.card().counters().apdus, 2);
}

#[test]
fn demo_reports_an_unknown_reader() {
    let demo = build_demo();
    let _lab = scardmanage_lab::shared();
    let output = Command::new(demo).arg("No Such Reader").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("scm_attach_by_ifd: 0x80100009 PC/SC: the reader name is not recognized"),
        "{stderr}"
    );
}

#[test]
fn header_compiles_as_strict_c_and_cpp() {
    let header = repo().join("include/scardmanage.h");
    run(compiler("CC", "cc").args(STRICT_C).args(["-fsyntax-only", "-x", "c"]).arg(&header));
    run(compiler("CXX", "c++")
        .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-x", "c++"])
        .arg(&header));
}

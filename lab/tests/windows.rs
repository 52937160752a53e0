//! WinSCard's documented conventions, checked from a Windows program under Wine through the
//! lab's bridge (`lab/windows/tests/conventions.c`, one line per convention).
//!
//! Needs mingw-w64 and Wine (`.ci/install-deps`); without them these tests fail, they do not
//! skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Pair 1's name: two-, three- and four-byte UTF-8 sequences (the last a UTF-16 surrogate
/// pair). The program expects exactly this name.
const FRIENDLY: &str = "Lecteur é€ 日本 𝄞";

/// Every check the program makes, each printing `ok NAME: ...` when it holds.
const CHECKS: &[&str] = &[
    "pci_exports",
    "widths",
    "ordinal_states",
    "raw_protocol",
    "wide_names",
    "ansi_names",
    "autoallocate",
    "codes",
    "control_code",
    "transmit",
    "latency",
    "pnp_notification",
    "started_event",
    "blocked_transaction",
    "cancel",
    "released_handles",
    "daemon_restart",
];

/// Compiles the convention program for `arch` with mingw against mingw's own `winscard.h`
/// and import library, as any Windows program would be.
fn build(arch: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("windows/tests/conventions.c");
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("conventions-{arch}.exe"));
    let compiler = format!("{arch}-w64-mingw32-gcc");
    let output = Command::new(&compiler)
        .args(["-O1", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(&source)
        .args(["-lwinscard", "-lws2_32"])
        .output()
        .unwrap_or_else(|e| panic!("{compiler} cannot run ({e}): apt-get install -y gcc-mingw-w64"));
    assert!(output.status.success(), "{compiler} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    exe
}

fn run(arch: &str, exe: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scm-lab"))
        .args([
            "run",
            "--windows",
            "--arch",
            arch,
            "--pairs",
            "2",
            "--friendly",
            &format!("1={FRIENDLY}"),
            "--",
        ])
        .arg(exe)
        .output()
        .expect("running scm-lab")
}

fn assert_conventions_hold(arch: &str) {
    let output = run(arch, &build(arch));
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    for check in CHECKS {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("ok {check}: "))),
            "{arch}: {check} did not pass"
        );
    }
    assert!(output.status.success(), "{arch}: the program failed ({})", output.status);
}

#[test]
fn winscard_conventions_hold_for_a_64_bit_windows_program() {
    assert_conventions_hold("x86_64");
}

/// 32-bit Wine (`wine32:i386`) is optional: where it is missing, `--arch i686` must say so
/// and fail, never pass as if the program had run.
#[test]
fn winscard_conventions_hold_for_a_32_bit_windows_program_or_i686_fails_clearly() {
    if Path::new("/usr/lib/wine/wine").is_file() {
        assert_conventions_hold("i686");
        return;
    }
    let output = run("i686", &build("i686"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(!output.status.success(), "an i686 run without 32-bit Wine succeeded");
    assert!(stderr.contains("wine32"), "the failure does not name the missing package: {stderr}");
}

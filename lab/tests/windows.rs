//! WinSCard's documented conventions, checked from a Windows program under Wine through the
//! lab's bridge (`lab/windows/tests/conventions.c`, one line per convention).
//!
//! Needs mingw-w64 and Wine (`.ci/install-deps`); without them these tests fail, they do not
//! skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
    "name_attributes",
    "no_context",
    "reader_groups",
    "autoallocate",
    "codes",
    "control_code",
    "transmit",
    "oversized_command",
    "reset_by_another",
    "card_absent",
    "latency",
    "pnp_notification",
    "started_event",
    "blocked_transaction",
    "cancel",
    "release_during_wait",
    "stale_context",
    "released_handles",
    "daemon_restart",
];

/// Compiles `lab/windows/tests/<name>.c` for `arch` with mingw (against mingw's own headers
/// and import libraries, as any Windows program would be) into `output`, with `extra`
/// arguments after the source, in `output`'s folder.
fn compile(arch: &str, name: &str, output: &Path, extra: &[&str]) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("windows/tests").join(format!("{name}.c"));
    let compiler = format!("{arch}-w64-mingw32-gcc");
    let result = Command::new(&compiler)
        .args(["-O1", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(output)
        .arg(&source)
        .args(extra)
        .current_dir(output.parent().unwrap())
        .output()
        .unwrap_or_else(|e| panic!("{compiler} cannot run ({e}): apt-get install -y gcc-mingw-w64"));
    assert!(result.status.success(), "{compiler} failed:\n{}", String::from_utf8_lossy(&result.stderr));
}

/// A folder of this test binary's own for `arch`'s programs.
fn folder(arch: &str) -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lab-windows-{arch}"));
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

fn scm_lab(arch: &str, friendly: &str, exe: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scm-lab"));
    command.args(["run", "--windows", "--arch", arch, "--pairs", "2", "--friendly", friendly, "--"]).arg(exe);
    command
}

/// The output of the conventions program run by `scm-lab`, and that `scm-lab`'s process id.
fn conventions(arch: &str) -> (Output, u32) {
    let exe = folder(arch).join("conventions.exe");
    compile(arch, "conventions", &exe, &["-lwinscard", "-lws2_32"]);
    let child = scm_lab(arch, &format!("1={FRIENDLY}"), &exe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running scm-lab");
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

fn assert_conventions_hold(arch: &str) {
    let (output, _) = conventions(arch);
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
    let (output, pid) = conventions("i686");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(!output.status.success(), "an i686 run without 32-bit Wine succeeded");
    assert!(stderr.contains("wine32"), "the failure does not name the missing package: {stderr}");
    // The lab had started: it is stopped, its folder gone, even on this early way out.
    let lab_dir = std::env::temp_dir().join(format!("scm-lab-{pid}-0"));
    assert!(!lab_dir.exists(), "{} is left behind", lab_dir.display());
}

/// The rest of what a Windows program gets from `scm-lab run --windows`: a non-ASCII
/// `SCM_LAB_READER` read in UTF-16 even under the C locale, `ProcessPrng` (which Rust programs
/// need and Wine 8.0 lacks), DLLs found through `SCM_WINDOWS_DLL_DIR`, and its exit code.
#[test]
fn a_windows_program_gets_the_labs_environment_prng_dll_folder_and_exit_code() {
    let folder = folder("x86_64");
    let dlls = folder.join("dlls");
    std::fs::create_dir_all(&dlls).unwrap();
    compile("x86_64", "helper", &dlls.join("helper.dll"), &["-shared", "-Wl,--out-implib,libhelper.dll.a"]);
    std::fs::rename(dlls.join("libhelper.dll.a"), folder.join("libhelper.dll.a")).unwrap();
    let exe = folder.join("runtime.exe");
    compile("x86_64", "runtime", &exe, &["-L.", "-lhelper"]);

    let output = scm_lab("x86_64", &format!("0={FRIENDLY}"), &exe)
        .env("SCM_WINDOWS_DLL_DIR", &dlls)
        .env("LC_ALL", "C")
        .output()
        .expect("running scm-lab");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    for check in ["environment", "process_prng", "dll_dir"] {
        assert!(stdout.lines().any(|l| l.starts_with(&format!("ok {check}: "))), "{check} did not pass");
    }
    assert_eq!(output.status.code(), Some(42), "scm-lab passes the program's exit code on");
}

/// A path as Wine's `Z:` drive shows it, for the command line of a Windows program.
fn z_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// Wine's own programs by name (`cmd`, `reg`, `cscript`), all in one prefix: what `reg`
/// writes, `cscript` reads; a program `cmd` starts reaches the card through the bridge; the
/// lab's environment gets through; the last program's exit code is the run's. A `cmd.exe` in
/// the current folder, which Wine would prefer for the bare name, is not the one run.
#[test]
fn wines_own_programs_run_by_name_in_one_prefix_against_the_lab() {
    let folder = folder("x86_64").join("by-name");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("cmd.exe"), b"not a program").unwrap();
    let child = folder.join("child.exe");
    compile("x86_64", "child", &child, &["-lwinscard"]);
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("windows/tests/probe.vbs");
    let line = format!(
        r"reg add HKCU\Software\ScmLabProbe /v Written /d by-reg.exe /f && {} && cscript //nologo {}",
        z_path(&child),
        z_path(&probe)
    );
    let output = Command::new(env!("CARGO_BIN_EXE_scm-lab"))
        .args(["run", "--windows", "--", "cmd", "/c", &line])
        .current_dir(&folder)
        .output()
        .expect("running scm-lab");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    for check in ["bridge", "registry", "environment"] {
        assert!(stdout.lines().any(|l| l.starts_with(&format!("ok {check}: "))), "{check} did not pass");
    }
    assert_eq!(output.status.code(), Some(42), "WScript.Quit's code is the run's");
}

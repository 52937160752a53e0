//! `scm-lab run [--windows [--arch x86_64|i686]] [--pairs N] [--friendly K=NAME]... [--insert-after MS] [--iso | --iso-short | --iso-t0] -- CMD [ARGS...]`:
//! runs one command against a private PC/SC lab.
//!
//! For demos, C examples and test programs that are not Rust tests: the command gets a daemon
//! of its own (`PCSCLITE_CSOCK_NAME`) with a default-applet card already present in the first
//! reader (`SCM_LAB_READER`; with `--insert-after MS`, inserted that long after the command
//! starts), a control channel to insert and remove cards and kill or restart
//! the daemon (`SCM_LAB_CONTROL`, see [`scardmanage_lab::control`]), and the lab is gone when
//! the command ends. With `--iso` (or `--iso-short`, `--iso-t0`) the cards are ISO/IEC 7816-4
//! cards ([`scardmanage_lab::iso`]: default options, short APDUs only, or T=0) instead.
//!
//! With `--windows`, CMD is a Windows program run under Wine in a prefix private to the run,
//! with the lab's WinSCard bridge as its `winscard.dll` (see [`scardmanage_lab::bridge`] and
//! [`scardmanage_lab::wine`]); the folder named by `SCM_WINDOWS_DLL_DIR`, if set, is on its
//! `PATH` (for `scardmanage.dll`). CMD may be a bare name of one of Wine's own programs (`cmd`,
//! `cscript`, `regsvr32`, `reg`, ...: `cmd /c "regsvr32 /s Z:\\x.dll & if errorlevel 1 (exit 1)
//! else cscript //nologo Z:\\x.vbs"`), which runs in the same prefix, its children with the same
//! bridge. (Wine 8.0's `cmd` runs what follows `&&` even after an external program failed: test
//! `errorlevel` instead.)

use scardmanage_lab::control::LabControl;
use scardmanage_lab::iso::IsoOptions;
use scardmanage_lab::wine::{self, Arch, Prefix};
use scardmanage_lab::{bridge, Lab, MAX_PAIRS, SOCKET_ENV};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: scm-lab run [--windows [--arch x86_64|i686]] [--pairs N] [--friendly K=NAME]... [--insert-after MS] [--iso | --iso-short | --iso-t0] -- CMD [ARGS...]\n\
    Starts a private pcscd with 2*N virtual readers (N = 1..8, default 1), inserts a\n\
    default-applet card in the first reader, runs CMD with PCSCLITE_CSOCK_NAME,\n\
    SCM_LAB_READER and SCM_LAB_CONTROL set, then stops the lab and exits with CMD's exit code.\n\
    --friendly K=NAME names pair K (0-based) NAME instead of \"Lab A\", \"Lab B\", ...;\n\
    its readers are \"NAME 00 00\" and \"NAME 00 01\" (NAME's bytes as given: UTF-8 or not).\n\
    --insert-after MS starts CMD with the first reader empty and inserts the card MS\n\
    milliseconds later (a program waiting for a card).\n\
    --windows runs CMD, a Windows program, under Wine (private prefix, the lab's WinSCard\n\
    bridge as winscard.dll, SCM_WINDOWS_DLL_DIR on its PATH); --arch picks 64 (default) or\n\
    32-bit Wine. CMD may name one of Wine's own programs (cmd, cscript, regsvr32, reg):\n\
    -- cmd /c \"regsvr32 /s Z:\\x.dll & if errorlevel 1 (exit 1) else cscript Z:\\x.vbs\"\n\
    runs both in the same prefix, against the same lab (Wine 8.0's cmd runs what\n\
    follows && even after a program failed: test errorlevel).\n\
    --iso makes every card an ISO/IEC 7816-4 card (T=1, extended length, chaining; control\n\
    requests iso-hostile, iso-reset, iso-commands), --iso-short one without extended length,\n\
    --iso-t0 a T=0 one.";

struct Options {
    /// The architecture of a Windows program, or `None` for a Linux one.
    windows: Option<Arch>,
    pairs: usize,
    friendly: Vec<(usize, Vec<u8>)>,
    /// When set, the first reader starts empty and its card goes in this long after CMD starts.
    insert_after: Option<Duration>,
    /// The options of the lab's ISO cards, or `None` for default-applet cards.
    iso: Option<IsoOptions>,
    command: Vec<OsString>,
}

// Arguments as the OS gives them: a --friendly name need not be UTF-8.
fn parse(args: &[OsString]) -> Result<Options, String> {
    let Some((verb, rest)) = args.split_first() else {
        return Err("missing subcommand".into());
    };
    if verb.as_os_str() != "run" {
        return Err(format!("unknown subcommand {verb:?}"));
    }
    let mut options = Options {
        windows: None,
        pairs: 1,
        friendly: Vec::new(),
        insert_after: None,
        iso: None,
        command: Vec::new(),
    };
    let mut arch = None;
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().ok_or_else(|| format!("{arg:?} needs a value"));
        let utf8 = |value: &OsString| {
            value.to_str().map(str::to_owned).ok_or_else(|| format!("{value:?} is not UTF-8"))
        };
        match utf8(arg)?.as_str() {
            "--" => break,
            "--windows" => options.windows = Some(Arch::X86_64),
            "--iso" | "--iso-short" | "--iso-t0" if options.iso.is_some() => {
                return Err("--iso, --iso-short and --iso-t0 go alone".into())
            }
            "--iso" => options.iso = Some(IsoOptions::default()),
            "--iso-short" => options.iso = Some(IsoOptions::SHORT),
            "--iso-t0" => options.iso = Some(IsoOptions::T0),
            "--arch" => {
                let value = utf8(value()?)?;
                arch = Some(
                    Arch::from_name(&value)
                        .ok_or_else(|| format!("--arch takes x86_64 or i686, not {value:?}"))?,
                );
            }
            "--pairs" => {
                let value = utf8(value()?)?;
                options.pairs = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAIRS).contains(n))
                    .ok_or_else(|| format!("--pairs takes 1 to {MAX_PAIRS}, not {value:?}"))?;
            }
            "--insert-after" => {
                let value = utf8(value()?)?;
                let ms =
                    value.parse().map_err(|_| format!("--insert-after takes milliseconds, not {value:?}"))?;
                options.insert_after = Some(Duration::from_millis(ms));
            }
            "--friendly" => {
                let value = value()?;
                let bytes = value.as_bytes();
                let (pair, name) = bytes
                    .iter()
                    .position(|&b| b == b'=')
                    .and_then(|at| {
                        Some((
                            std::str::from_utf8(&bytes[..at]).ok()?.parse().ok()?,
                            bytes[at + 1..].to_vec(),
                        ))
                    })
                    .ok_or_else(|| format!("--friendly takes K=NAME, not {value:?}"))?;
                options.friendly.push((pair, name));
            }
            other => return Err(format!("unexpected argument {other:?} (the command goes after --)")),
        }
    }
    if let Some(arch) = arch {
        if options.windows.is_none() {
            return Err("--arch goes with --windows".into());
        }
        options.windows = Some(arch);
    }
    options.command = rest.cloned().collect();
    if options.command.is_empty() {
        return Err("no command given after --".into());
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") && !args.iter().any(|a| a == "--") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("scm-lab: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let lab = match Lab::start_named_bytes(options.pairs, &options.friendly) {
        Ok(lab) => LabControl::with_iso(lab, options.iso),
        Err(e) => {
            eprintln!("scm-lab: cannot start the PC/SC lab: {e}");
            return ExitCode::from(1);
        }
    };
    let reader = lab.readers()[0].clone();
    match options.insert_after {
        None => {
            if let Err(e) = lab.insert(0) {
                eprintln!("scm-lab: {e}\n{}", lab.log_tail());
                return ExitCode::from(1);
            }
        }
        Some(delay) => {
            let lab = std::sync::Arc::clone(&lab);
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                eprintln!("scm-lab: inserting the card in {:?}", lab.readers()[0].name);
                if let Err(e) = lab.insert(0) {
                    eprintln!("scm-lab: {e}");
                }
            });
        }
    }
    let control = match lab.serve() {
        Ok(address) => address,
        Err(e) => {
            eprintln!("scm-lab: cannot open the control channel: {e}");
            return ExitCode::from(1);
        }
    };

    // Kept until the program has ended: dropping it removes the prefix.
    let mut prefix = None;
    let mut command = match options.windows {
        None => Command::new(&options.command[0]),
        Some(arch) => match windows_command(arch, Path::new(&options.command[0])) {
            Ok((command, private)) => {
                prefix = Some(private);
                command
            }
            Err(e) => {
                eprintln!("scm-lab: cannot run {:?} under Wine: {e}", options.command[0]);
                // The control channel's thread holds the lab too: it would never be dropped.
                lab.close();
                return ExitCode::from(1);
            }
        },
    };
    // A killed scm-lab (a test's timeout) must not leave the program running against nothing.
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls.
    let parent = std::process::id();
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Killed before the prctl took effect: no signal will come, so no program either.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let status = command
        .args(&options.command[1..])
        .env(SOCKET_ENV, lab.socket_path())
        .env("SCM_LAB_READER", &reader.name)
        .env("SCM_LAB_CONTROL", control.to_string())
        .status();
    let elapsed = started.elapsed();
    drop(prefix);
    let apdus = lab.counters(0).map_or(0, |c| c.apdus);
    lab.close();

    match status {
        Ok(status) => {
            let code = status.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + status.signal().unwrap_or(0)
            });
            eprintln!(
                "scm-lab: {:?} exited with {code} after {:.3} s; {} readers, card in {:?} saw {apdus} APDUs",
                options.command[0],
                elapsed.as_secs_f64(),
                options.pairs * 2,
                reader.name,
            );
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("scm-lab: cannot run {:?}: {e}", options.command[0]);
            ExitCode::from(127)
        }
    }
}

/// The command running a Windows program under Wine against this process's lab: a private
/// prefix with the lab's DLLs, and the bridge's relay listening (`SCM_LAB_BRIDGE`). A bare
/// name of one of Wine's own programs (`cmd`, `cscript`, `regsvr32`, `reg`) runs that program.
fn windows_command(arch: Arch, program: &Path) -> std::io::Result<(Command, Prefix)> {
    let dlls = wine::build_dlls(arch)?;
    let prefix = Prefix::create(arch, &dlls)?;
    let dll_dirs: Vec<PathBuf> =
        std::env::var_os("SCM_WINDOWS_DLL_DIR").map(PathBuf::from).into_iter().collect();
    let program = prefix.system_program(program).map_or_else(|| program.to_path_buf(), PathBuf::from);
    let mut command = prefix.command(&program, &dll_dirs);
    command.env("SCM_LAB_BRIDGE", bridge::serve()?.to_string());
    Ok((command, prefix))
}

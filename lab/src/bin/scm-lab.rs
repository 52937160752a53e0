//! `scm-lab run [--pairs N] -- CMD [ARGS...]`: runs one command against a private PC/SC lab.
//!
//! For demos, C examples and manual checks that are not Rust tests: the command gets a daemon
//! of its own (`PCSCLITE_CSOCK_NAME`) with a default-applet card already present in the first
//! reader (`SCM_LAB_READER`), and the lab is gone when the command ends.

use scardmanage_lab::{wait_card, Lab, VirtualCard, SOCKET_ENV};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: scm-lab run [--pairs N] -- CMD [ARGS...]\n\
    Starts a private pcscd with 2*N virtual readers (N = 1..8, default 1), inserts a\n\
    default-applet card in the first reader, runs CMD with PCSCLITE_CSOCK_NAME and\n\
    SCM_LAB_READER set, then stops the lab and exits with CMD's exit code.";

/// How long the card may take to show up; pcscd polls every ~400 ms.
const CARD_TIMEOUT: Duration = Duration::from_secs(10);

struct Options {
    pairs: usize,
    command: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let Some((verb, rest)) = args.split_first() else {
        return Err("missing subcommand".into());
    };
    if verb != "run" {
        return Err(format!("unknown subcommand {verb:?}"));
    }
    let mut pairs = 1;
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--" => break,
            "--pairs" => {
                let value = rest.next().ok_or("--pairs needs a value")?;
                pairs = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=8).contains(n))
                    .ok_or_else(|| format!("--pairs takes 1 to 8, not {value:?}"))?;
            }
            other => return Err(format!("unexpected argument {other:?} (the command goes after --)")),
        }
    }
    let command: Vec<String> = rest.cloned().collect();
    if command.is_empty() {
        return Err("no command given after --".into());
    }
    Ok(Options { pairs, command })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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

    let lab = match Lab::start(options.pairs) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("scm-lab: cannot start the PC/SC lab: {e}");
            return ExitCode::from(1);
        }
    };
    // Before this process's first PC/SC call (wait_card), which is when libpcsclite reads it.
    std::env::set_var(SOCKET_ENV, lab.socket_path());
    let reader = lab.readers()[0].clone();
    let card = VirtualCard::with_default_applet();
    card.insert(reader.port);
    if !wait_card(&reader.name, true, CARD_TIMEOUT) {
        eprintln!(
            "scm-lab: the card did not show up in {:?} within {} s\n{}",
            reader.name,
            CARD_TIMEOUT.as_secs(),
            lab.log_tail()
        );
        return ExitCode::from(1);
    }

    let started = Instant::now();
    let status = Command::new(&options.command[0])
        .args(&options.command[1..])
        .env(SOCKET_ENV, lab.socket_path())
        .env("SCM_LAB_READER", &reader.name)
        .status();
    let elapsed = started.elapsed();
    let counters = card.counters();
    card.remove();
    drop(lab);

    match status {
        Ok(status) => {
            let code = status.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + status.signal().unwrap_or(0)
            });
            eprintln!(
                "scm-lab: {:?} exited with {code} after {:.3} s; {} readers, card in {:?} saw {} APDUs",
                options.command[0],
                elapsed.as_secs_f64(),
                options.pairs * 2,
                reader.name,
                counters.apdus
            );
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("scm-lab: cannot run {:?}: {e}", options.command[0]);
            ExitCode::from(127)
        }
    }
}

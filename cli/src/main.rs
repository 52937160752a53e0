//! `scm`: list the readers, show a card's status, send APDUs, watch readers and cards, read a
//! file, verify a PIN, through scardmanage.

mod library;
mod output;
mod pin;
#[cfg(unix)]
mod signals;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args, Parser, Subcommand};
use scardmanage::{
    SCM_E_INVALIDARG, SCM_MAX_APDU_SIZE, SCM_REF_BY_ID, SCM_REF_BY_NAME, SCM_REF_BY_SHORT_ID,
    SCM_SCARD_E_NO_SMARTCARD, SCM_SCARD_E_UNKNOWN_READER, SCM_SCARD_W_REMOVED_CARD, SCM_WAIT_INFINITE,
};

use library::{Event, Manager, Monitor, Verdict};
use output::{Exchange, Status, Verification};

const AFTER_HELP: &str = "\
READER names a reader: its exact name, a prefix that only one reader's name starts with, or
#N, the reader's index in `scm readers` (#0 is the first). Indexes follow PC/SC's order, which
can change when readers come and go: scripts should use names.

Output is for people unless --json is given: then one JSON object on stdout (scm watch: one
per line, per event; the fields are listed in each subcommand's help). Errors always go to
stderr as text: the failed call, its HRESULT and the library's message.

Exit codes:
  0  success
  1  PC/SC or card error (the HRESULT is printed), or the output could not be written
     (a closed pipe, a full disk): no further APDU is sent then; scm watch ends with 0 on
     a closed pipe, the way `scm watch | head -3` ends
  2  usage: unknown subcommand or option, missing argument, bad hex, or a value the library
     refuses as invalid (SCM_E_INVALIDARG: an APDU whose lengths do not match, a bad path)
  3  reader not found: no reader matches READER, or more than one does
  4  no card in the reader (or it was removed during the command)
  5  the card refused the PIN (scm verify): wrong, with the tries left printed, or blocked";

/// Try scardmanage on a reader and its card.
#[derive(Parser)]
#[command(name = "scm", version, after_help = AFTER_HELP, disable_help_subcommand = false)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print one JSON object on stdout instead of text
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// List the readers, with their indexes
    ///
    /// JSON: {"readers": [{"index": 0, "name": "..."}, ...]}, an empty list when there is none.
    #[command(after_help = AFTER_HELP, verbatim_doc_comment)]
    Readers,
    /// Show the card's state, protocol and ATR
    ///
    /// The reader is attached in shared mode and the card is left as it was.
    ///
    /// JSON: {"reader": "...", "state": "...", "protocol": "...", "atr": "3B..." or null}
    ///   state: unknown, absent, present, swallowed, powered, negotiable or specific
    ///   protocol: undefined, T=0, T=1 or raw
    ///   atr: hex, null when no card is connected
    #[command(after_help = AFTER_HELP, verbatim_doc_comment)]
    Status {
        /// The reader: exact name, unique prefix, or #N
        reader: String,
    },
    /// Send APDUs to the card, in order, and print each answer
    ///
    /// Each HEX argument is one command APDU of at least 4 bytes: 00A40400023F00, or
    /// "00 A4 04 00 02 3F 00" (quoted: one argument), or 00:A4:04:00:02:3F:00; spaces and
    /// colons between the digits are ignored. All are checked as hex before the first is sent.
    ///
    /// ISO 7816 help is on (scm_transmit_ex with SCM_ISO_ALL): an answer announced by 61xx is
    /// collected with GET RESPONSE and printed whole, 6Cxx gets the command sent again with
    /// that Le, a command too long for a short APDU goes as an extended one or chained. The
    /// library decodes each APDU for that: one whose length bytes do not match its size is
    /// refused when its turn comes (exit 2). --raw turns the help off.
    ///
    /// The card's status word is printed, not judged: a 6A82 answer still exits 0. The
    /// exchange stops at the first PC/SC error; in text, the exchanges before it are printed.
    ///
    /// JSON: {"reader": "...", "exchanges": [{"command": "00A4...", "response": "...9000",
    ///   "sw": "9000"}, ...]}
    ///   response: the whole answer in hex, status word included
    ///   sw: its last two bytes, null for an answer shorter than that
    #[command(after_help = AFTER_HELP, verbatim_doc_comment)]
    Apdu(ApduArgs),
    /// Print readers and cards coming and going, as it happens
    ///
    /// The first lines are what is already there: each reader, then its card if one is in.
    /// Then one line per change, written out at once: "reader added: NAME", "reader removed:
    /// NAME", "card inserted: NAME", "card removed: NAME". It runs until Ctrl-C (SIGINT) or
    /// SIGTERM, which end it with exit code 0 (on Unix; elsewhere Ctrl-C ends the process),
    /// until --count or --timeout, or until the reader of its output has gone (a closed pipe,
    /// seen at the next event: exit code 0 too).
    ///
    /// JSON: one object per line and event: {"event": "card_inserted", "reader": "..."}
    ///   event: reader_added, reader_removed, card_inserted or card_removed
    #[command(after_help = AFTER_HELP, verbatim_doc_comment)]
    Watch(WatchArgs),
    /// Read a file of the card and print it in hex
    ///
    /// PATH is the file's identifiers in hex, four digits each, / between them allowed:
    /// 3F00/5000/5001, or 5000/5001, which is the same (the tool starts at the MF, 3F00).
    /// --sfi N names it by its short EF identifier (1 to 30) instead. --name HEX first goes
    /// to the DF with that name (SELECT by DF name); PATH or --sfi is then taken from there.
    /// A record file is read record after record, the records joined.
    ///
    /// Text: 16 bytes a line, after their offset in hex and followed by them as ASCII ('.'
    /// for the rest), then the size. With --out FILE, the bytes go to FILE (created or
    /// replaced) and the size is printed.
    ///
    /// JSON: {"reader": "...", "size": 33, "data": "7363..."}
    ///   with --out: {"reader": "...", "size": 33, "out": "FILE"}
    // clap would put the PATH|--sfi group before READER in the usage line.
    #[command(after_help = AFTER_HELP, verbatim_doc_comment, override_usage = "scm read [OPTIONS] <READER> <PATH|--sfi <N>>")]
    Read(ReadArgs),
    /// Verify a PIN: VERIFY with the code typed at the terminal
    ///
    /// REF is the PIN's reference in hex, as VERIFY's P2 carries it: 81 or 0x81.
    ///
    /// The PIN is never an argument (other users' ps and the shell's history would show it).
    /// When stdin is a terminal it is typed at /dev/tty after a prompt, with echo off;
    /// otherwise it is the first line of stdin, without the line's end: for a script,
    /// scm verify READER 81 < pin-file. It is sent as given, without padding.
    ///
    /// Prints "ok", or what the card said: "wrong PIN: 2 tries left" or "PIN blocked", both
    /// with exit code 5. The card keeps the verification until it is reset or removed: the
    /// tool leaves it as it is. Ctrl-C at the prompt puts echo back and exits with 130, as do
    /// Ctrl-\ (131), SIGTERM (143) and a hang-up (129): 128 and the signal's number. Ctrl-Z
    /// there gives the shell its echo back; fg turns it off again for the PIN.
    ///
    /// JSON: {"reader": "...", "reference": "81", "result": "ok", "tries_left": null}
    ///   result: ok, wrong or blocked
    ///   tries_left: after a wrong PIN the tries the card says are left, null when it does not
    ///   say; 0 when blocked; null when ok
    #[command(after_help = AFTER_HELP, verbatim_doc_comment)]
    Verify {
        /// The reader: exact name, unique prefix, or #N
        reader: String,
        /// The PIN's reference in hex (VERIFY's P2), 00 to FF
        #[arg(value_name = "REF", value_parser = parse_reference)]
        reference: u8,
    },
}

#[derive(Args)]
struct ApduArgs {
    /// The reader: exact name, unique prefix, or #N
    reader: String,
    /// Command APDUs in hex, sent in this order
    #[arg(required = true, value_name = "HEX", value_parser = parse_apdu)]
    apdus: Vec<Apdu>,
    /// Send each APDU exactly as given (scm_transmit) and print the answer as it came
    #[arg(long)]
    raw: bool,
}

#[derive(Args)]
#[command(group(ArgGroup::new("file").required(true).args(["path", "sfi"])))]
struct ReadArgs {
    /// The reader: exact name, unique prefix, or #N
    reader: String,
    /// The file: identifiers in hex (3F00/5000/5001)
    path: Option<String>,
    /// The file's short EF identifier, 1 to 30
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=30))]
    sfi: Option<u8>,
    /// Go to the DF with this name first (hex, 1 to 16 bytes)
    #[arg(long, value_name = "HEX", value_parser = parse_df_name)]
    name: Option<String>,
    /// Write the bytes to FILE instead of printing them
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct WatchArgs {
    /// Stop after N events
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop after SECONDS (a decimal number) have passed; exit code 0
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    timeout: Option<Duration>,
}

#[derive(Clone)]
struct Apdu(Vec<u8>);

/// Bytes in hex; spaces and colons between the digits are ignored.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !matches!(b, b' ' | b':' | b'\t')).collect();
    // Checked here, not left to from_str_radix, which takes a leading '+'.
    if let Some(&bad) = digits.iter().find(|b| !b.is_ascii_hexdigit()) {
        return Err(format!("{:?} is not a hex digit", char::from(bad)));
    }
    if digits.len() % 2 != 0 {
        return Err("an odd number of hex digits".into());
    }
    Ok(digits.chunks(2).map(|pair| (hex_digit(pair[0]) << 4) | hex_digit(pair[1])).collect())
}

fn parse_apdu(text: &str) -> Result<Apdu, String> {
    let bytes = parse_hex(text)?;
    if bytes.len() < 4 {
        // ISO 7816-4: every command has CLA INS P1 P2.
        return Err("a command APDU has at least 4 bytes (CLA INS P1 P2)".into());
    }
    if bytes.len() > SCM_MAX_APDU_SIZE {
        return Err(format!("{} bytes, more than the {SCM_MAX_APDU_SIZE} an APDU may have", bytes.len()));
    }
    Ok(Apdu(bytes))
}

/// A DF name, as the library takes it: hex digits only.
fn parse_df_name(text: &str) -> Result<String, String> {
    match parse_hex(text)? {
        // ISO 7816-4 5.3.1.3: 1 to 16 bytes.
        name if (1..=16).contains(&name.len()) => Ok(output::hex(&name, "")),
        _ => Err("a DF name has 1 to 16 bytes".into()),
    }
}

/// A checked ASCII hex digit's value.
fn hex_digit(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit.to_ascii_uppercase() - b'A' + 10,
    }
}

/// One or two hex digits, with or without `0x`.
fn parse_reference(text: &str) -> Result<u8, String> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    match digits.len() {
        1 | 2 if digits.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(digits.bytes().fold(0, |value, digit| (value << 4) | hex_digit(digit)))
        }
        _ => Err("a reference is one byte in hex: 81 or 0x81".into()),
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|seconds| *seconds > 0.0)
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| "a number of seconds above 0: 10 or 0.5".into())
}

/// Why a command failed; each has its exit code (see AFTER_HELP).
enum Failure {
    Library(library::Error),
    ReaderNotFound(String),
    Usage(String),
    /// The card's answer to a PIN, for stdout: it is the command's result.
    PinRefused(String),
    /// Writing to stdout (or the output file) failed.
    Output(io::Error),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Library(e) if e.hr == SCM_SCARD_E_UNKNOWN_READER => 3,
            Failure::Library(e) if e.hr == SCM_SCARD_E_NO_SMARTCARD || e.hr == SCM_SCARD_W_REMOVED_CARD => 4,
            Failure::Library(e) if e.hr == SCM_E_INVALIDARG => 2,
            Failure::Library(_) | Failure::Output(_) => 1,
            Failure::Usage(_) => 2,
            Failure::ReaderNotFound(_) => 3,
            Failure::PinRefused(_) => 5,
        }
    }
}

impl From<library::Error> for Failure {
    fn from(e: library::Error) -> Failure {
        Failure::Library(e)
    }
}

/// A name as printed: U+FFFD for what is not UTF-8, as the bindings decode names.
fn shown(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// The reader `spec` names: exact name first, then `#N`, then a unique prefix. Compared as
/// bytes: a name that is not UTF-8 printed with U+FFFD is not the name, and may be another
/// reader's.
fn resolve(spec: &str, readers: &[Vec<u8>]) -> Result<Vec<u8>, Failure> {
    let spec_bytes = spec.as_bytes();
    if readers.iter().any(|r| r == spec_bytes) {
        return Ok(spec_bytes.to_vec());
    }
    if let Some(index) = spec.strip_prefix('#').and_then(|n| n.parse::<usize>().ok()) {
        return readers.get(index).cloned().ok_or_else(|| {
            Failure::ReaderNotFound(format!(
                "no reader #{index}: there are {} (see `scm readers`)",
                readers.len()
            ))
        });
    }
    let matching: Vec<&Vec<u8>> = readers.iter().filter(|r| r.starts_with(spec_bytes)).collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Failure::ReaderNotFound(format!("no reader matches {spec:?} (see `scm readers`)"))),
        many => Err(Failure::ReaderNotFound(format!(
            "{spec:?} matches {} readers: {}",
            many.len(),
            many.iter().map(|r| format!("{:?}", shown(r))).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn attach(spec: &str) -> Result<(String, Manager), Failure> {
    let reader = resolve(spec, &library::readers()?)?;
    let manager = Manager::attach(&reader)?;
    Ok((shown(&reader), manager))
}

fn run(cli: &Cli) -> Result<String, Failure> {
    match &cli.command {
        Command::Readers => {
            let names: Vec<String> = library::readers()?.iter().map(|name| shown(name)).collect();
            Ok(output::readers(&names, cli.json))
        }
        Command::Status { reader } => {
            let (reader, manager) = attach(reader)?;
            let (state, protocol) = manager.status()?;
            let atr = match manager.atr() {
                Ok(atr) => Some(atr),
                Err(e) if e.hr == SCM_SCARD_E_NO_SMARTCARD => None,
                Err(e) => return Err(e.into()),
            };
            Ok(output::status(&Status { reader: &reader, state, protocol, atr: atr.as_deref() }, cli.json))
        }
        Command::Apdu(args) => {
            let (reader, manager) = attach(&args.reader)?;
            let mut exchanges = Vec::new();
            for Apdu(command) in &args.apdus {
                let response = manager.transmit(command, !args.raw)?;
                if !cli.json {
                    // Printed as it happens: what was exchanged before a failure is still seen.
                    emit(&output::exchange_text(command, &response))?;
                }
                exchanges.push(Exchange { command: command.clone(), response });
            }
            Ok(if cli.json { output::exchanges_json(&reader, &exchanges) } else { String::new() })
        }
        Command::Read(args) => read(args, cli.json),
        Command::Watch(args) => watch(args, cli.json).map(|()| String::new()),
        Command::Verify { reader, reference } => verify(reader, *reference, cli.json),
    }
}

fn read(args: &ReadArgs, json: bool) -> Result<String, Failure> {
    let (reader, manager) = attach(&args.reader)?;
    let files = manager.file_access()?;
    if let Some(name) = &args.name {
        files.change_dir(SCM_REF_BY_NAME, name)?;
    }
    let content = match (&args.path, args.sfi) {
        (Some(path), _) => files.read_all(SCM_REF_BY_ID, path)?,
        // Decimal, as the library takes short EF identifiers.
        (None, Some(sfi)) => files.read_all(SCM_REF_BY_SHORT_ID, &sfi.to_string())?,
        (None, None) => unreachable!("clap requires PATH or --sfi"),
    };
    let Some(out) = &args.out else {
        return Ok(output::file(&reader, &content, json));
    };
    std::fs::write(out, &content)
        .map_err(|e| Failure::Output(io::Error::new(e.kind(), format!("{}: {e}", out.display()))))?;
    Ok(output::file_written(&reader, content.len(), &out.to_string_lossy(), json))
}

fn watch(args: &WatchArgs, json: bool) -> Result<(), Failure> {
    let monitor = Monitor::create()?;
    #[cfg(unix)]
    {
        let canceller = monitor.canceller();
        // A cancel only ends a wait in progress: one that comes while the loop below is
        // printing would be lost, so the stop is repeated until the loop has seen it and the
        // process has ended. A write to an output nobody reads blocks where no cancel reaches:
        // then, after a second, the process ends from here, as SIGTERM's default would.
        signals::handle(&[libc::SIGINT, libc::SIGTERM], move |_| {
            let give_up = Instant::now() + Duration::from_secs(1);
            while Instant::now() < give_up {
                canceller.cancel();
                std::thread::sleep(Duration::from_millis(50));
            }
            // Every event printed was flushed with its line: nothing is lost.
            std::process::exit(0);
        })
        .map_err(Failure::Output)?;
    }
    let deadline = args.timeout.map(|timeout| Instant::now() + timeout);
    let mut out = io::stdout().lock();
    let mut seen = 0;
    while args.count.is_none_or(|count| seen < count) {
        let timeout_ms = match deadline {
            // Whole milliseconds, rounded up so the wait does not end before the deadline.
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) => u32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(SCM_WAIT_INFINITE - 1),
                None => break,
            },
            None => SCM_WAIT_INFINITE,
        };
        match monitor.next(timeout_ms)? {
            Event::Change(event, reader) => {
                let line = output::event(event, &reader, json);
                match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
                    Ok(()) => seen += 1,
                    // The reader of a pipe is gone (`scm watch | head -1`): nobody is left to tell.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
                    Err(e) => return Err(Failure::Output(e)),
                }
            }
            Event::TimedOut | Event::Cancelled => break,
        }
    }
    Ok(())
}

fn verify(reader: &str, reference: u8, json: bool) -> Result<String, Failure> {
    // Echo must come back however the prompt ends: Ctrl-\ (SIGQUIT) and a hang-up too, whose
    // default would end the process with the terminal left silent. Ctrl-Z and `fg` (SIGTSTP,
    // SIGCONT) give it back for the time the process is stopped.
    #[cfg(unix)]
    signals::handle(
        &[libc::SIGINT, libc::SIGTERM, libc::SIGQUIT, libc::SIGHUP, libc::SIGTSTP, libc::SIGCONT],
        |signal| match signal {
            libc::SIGTSTP => pin::suspend(),
            libc::SIGCONT => pin::resume(),
            _ => {
                pin::restore();
                // The shell's way of saying which signal ended a command.
                std::process::exit(128 + signal);
            }
        },
    )
    .map_err(Failure::Output)?;
    let (reader, manager) = attach(reader)?;
    let chv = manager.chv()?;
    // No card connected (SCM_SCARD_E_NO_SMARTCARD, exit 4) is said before the PIN is asked for,
    // not after it was typed for nothing.
    manager.atr()?;
    let code = pin::read(&format!("PIN ({reference:02X}): ")).map_err(|e| Failure::Usage(e.to_string()))?;
    let verdict = chv.verify(reference, code.as_bytes())?;
    let text = output::verification(&Verification { reader: &reader, reference, verdict }, json);
    match verdict {
        Verdict::Verified => Ok(text),
        Verdict::Wrong(_) | Verdict::Blocked => Err(Failure::PinRefused(text)),
    }
}

/// Writes to stdout, and says when that failed: `print!` would panic (exit 101, with a
/// backtrace) on a reader that has gone away, as in `scm readers | head -0`.
fn emit(text: &str) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(Failure::Output)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).and_then(|text| emit(&text)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let why = match &failure {
                Failure::Library(e) => Some(e.to_string()),
                Failure::ReaderNotFound(why) | Failure::Usage(why) => Some(why.clone()),
                Failure::Output(e) => Some(format!("writing the output: {e}")),
                Failure::PinRefused(text) => {
                    // The command's result, so stdout's; one that cannot take it is left to the
                    // exit code, which says the PIN was refused either way.
                    let _ = write!(io::stdout(), "{text}");
                    None
                }
            };
            // Not `eprintln!`, which panics when stderr is a closed pipe too: the exit code says it.
            if let Some(why) = why {
                let _ = writeln!(io::stderr(), "scm: {why}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_accepts_spaces_and_colons_and_refuses_the_rest() {
        assert_eq!(parse_apdu("00A4 0400:02").unwrap().0, [0x00, 0xA4, 0x04, 0x00, 0x02]);
        assert_eq!(parse_apdu("ffeeddcc").unwrap().0, [0xFF, 0xEE, 0xDD, 0xCC]);
        for bad in ["", " : ", "0", "00A40400 0", "00A4040G", "00A4 04+1", "00A404é0", "00A404"] {
            assert!(parse_apdu(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_apdu(&"00".repeat(SCM_MAX_APDU_SIZE)).is_ok());
        assert!(parse_apdu(&"00".repeat(SCM_MAX_APDU_SIZE + 1)).is_err());
    }

    #[test]
    fn a_df_name_is_1_to_16_bytes_given_to_the_library_as_plain_hex() {
        assert_eq!(parse_df_name("f0 53:43").ok().as_deref(), Some("F05343"));
        assert_eq!(parse_df_name(&"A0".repeat(16)).ok(), Some("A0".repeat(16)));
        for bad in ["", " ", "F", "F0G0", &"A0".repeat(17)] {
            assert!(parse_df_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_reference_is_one_hex_byte() {
        for (text, value) in [("81", 0x81), ("0x81", 0x81), ("0X8a", 0x8A), ("1", 1), ("00", 0), ("ff", 0xFF)]
        {
            assert_eq!(parse_reference(text).ok(), Some(value), "{text}");
        }
        for bad in ["", "0x", "181", "8G", "+1", "0x181", " 81"] {
            assert!(parse_reference(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn seconds_are_positive_numbers() {
        assert_eq!(parse_seconds("10").ok(), Some(Duration::from_secs(10)));
        assert_eq!(parse_seconds("0.25").ok(), Some(Duration::from_millis(250)));
        for bad in ["0", "-1", "x", "", "inf", "NaN", "1e30"] {
            assert!(parse_seconds(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn readers_are_named_exactly_by_index_or_by_a_unique_prefix() {
        let readers: Vec<Vec<u8>> = ["Acme 00 00", "Acme 01 00", "Other 00 00"].map(Vec::from).to_vec();
        let found = |spec| resolve(spec, &readers).ok();
        assert_eq!(found("Acme 01 00").as_deref(), Some(&b"Acme 01 00"[..]));
        assert_eq!(found("#2").as_deref(), Some(&b"Other 00 00"[..]));
        assert_eq!(found("Oth").as_deref(), Some(&b"Other 00 00"[..]));
        assert_eq!(found("Acme 0"), None, "ambiguous");
        assert_eq!(found("#3"), None);
        assert_eq!(found("acme"), None, "names are case-sensitive");
        // An exact name wins over being the prefix of another name.
        let nested: Vec<Vec<u8>> = ["R", "R2"].map(Vec::from).to_vec();
        assert_eq!(resolve("R", &nested).ok().as_deref(), Some(&b"R"[..]));
    }

    /// A Latin-1 name printed with U+FFFD is another reader's name: it must not be matched by
    /// it, nor stand for it.
    #[test]
    fn names_that_are_not_utf8_are_matched_as_bytes() {
        let readers: Vec<Vec<u8>> = vec![b"Lab \xE9 00".to_vec(), "Lab \u{FFFD} 01".into()];
        assert_eq!(resolve("#0", &readers).ok().as_deref(), Some(&b"Lab \xE9 00"[..]));
        assert_eq!(resolve("Lab \u{FFFD} 0", &readers).ok().as_deref(), Some("Lab \u{FFFD} 01".as_bytes()));
        assert_eq!(resolve("Lab \u{FFFD} 00", &readers).ok(), None);
        assert_eq!(shown(&readers[0]), "Lab \u{FFFD} 00");
    }

    #[test]
    fn the_parser_is_well_formed() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}

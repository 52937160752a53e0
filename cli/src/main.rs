//! `scm`: list the readers, show a card's status, send APDUs, through scardmanage.

mod library;
mod output;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use scardmanage::{
    SCM_MAX_APDU_SIZE, SCM_SCARD_E_NO_SMARTCARD, SCM_SCARD_E_UNKNOWN_READER, SCM_SCARD_W_REMOVED_CARD,
};

use library::Manager;
use output::{Exchange, Status};

const AFTER_HELP: &str = "\
READER names a reader: its exact name, a prefix that only one reader's name starts with, or
#N, the reader's index in `scm readers` (#0 is the first). Indexes follow PC/SC's order, which
can change when readers come and go: scripts should use names.

Output is for people unless --json is given: then one JSON object on stdout (its fields are
listed in each subcommand's help). Errors always go to stderr as text: the failed call, its
HRESULT and the library's message.

Exit codes:
  0  success
  1  PC/SC or card error (the HRESULT is printed), or the output could not be written
     (a closed pipe, a full disk): no further APDU is sent then
  2  usage: unknown subcommand or option, missing argument, bad hex
  3  reader not found: no reader matches READER, or more than one does
  4  no card in the reader (or it was removed during the command)";

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
    /// colons between the digits are ignored. All are checked before the first is sent.
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
}

#[derive(Args)]
struct ApduArgs {
    /// The reader: exact name, unique prefix, or #N
    reader: String,
    /// Command APDUs in hex, sent in this order
    #[arg(required = true, value_name = "HEX", value_parser = parse_apdu)]
    apdus: Vec<Apdu>,
    /// Send each APDU as given and print the answer as it came (the default for now)
    ///
    /// This is so far the only mode. ISO help, which answers 61xx with GET RESPONSE and 6Cxx
    /// by sending again with the right Le, comes with the library's scm_transmit_ex; it will
    /// then be the default and --raw will turn it off.
    #[arg(long, verbatim_doc_comment)]
    raw: bool,
}

#[derive(Clone)]
struct Apdu(Vec<u8>);

fn parse_apdu(text: &str) -> Result<Apdu, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !matches!(b, b' ' | b':' | b'\t')).collect();
    // Checked here, not left to from_str_radix, which takes a leading '+'.
    if let Some(&bad) = digits.iter().find(|b| !b.is_ascii_hexdigit()) {
        return Err(format!("{:?} is not a hex digit", char::from(bad)));
    }
    if digits.len() % 2 != 0 {
        return Err("an odd number of hex digits".into());
    }
    if digits.len() < 8 {
        // ISO 7816-4: every command has CLA INS P1 P2.
        return Err("a command APDU has at least 4 bytes (CLA INS P1 P2)".into());
    }
    let bytes =
        digits.chunks(2).map(|pair| (hex_digit(pair[0]) << 4) | hex_digit(pair[1])).collect::<Vec<u8>>();
    if bytes.len() > SCM_MAX_APDU_SIZE {
        return Err(format!("{} bytes, more than the {SCM_MAX_APDU_SIZE} an APDU may have", bytes.len()));
    }
    Ok(Apdu(bytes))
}

/// A checked ASCII hex digit's value.
fn hex_digit(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit.to_ascii_uppercase() - b'A' + 10,
    }
}

/// Why a command failed; each has its exit code (see AFTER_HELP).
enum Failure {
    Library(library::Error),
    ReaderNotFound(String),
    /// Writing to stdout failed.
    Output(io::Error),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Library(e) if e.hr == SCM_SCARD_E_UNKNOWN_READER => 3,
            Failure::Library(e) if e.hr == SCM_SCARD_E_NO_SMARTCARD || e.hr == SCM_SCARD_W_REMOVED_CARD => 4,
            Failure::Library(_) => 1,
            Failure::ReaderNotFound(_) => 3,
            Failure::Output(_) => 1,
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
                let response = manager.transmit(command)?;
                if !cli.json {
                    // Printed as it happens: what was exchanged before a failure is still seen.
                    emit(&output::exchange_text(command, &response))?;
                }
                exchanges.push(Exchange { command: command.clone(), response });
            }
            Ok(if cli.json { output::exchanges_json(&reader, &exchanges) } else { String::new() })
        }
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
                Failure::Library(e) => e.to_string(),
                Failure::ReaderNotFound(why) => why.clone(),
                Failure::Output(e) => format!("writing the output: {e}"),
            };
            // Not `eprintln!`, which panics when stderr is a closed pipe too: the exit code says it.
            let _ = writeln!(io::stderr(), "scm: {why}");
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

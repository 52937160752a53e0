//! `scm-lab run` as a program under test sees it: its environment, the control channel, a
//! non-ASCII reader name as pcscd reports it, and the exit code passed through.
//!
//! In a test binary of its own: this process's libpcsclite is pointed at the daemon of the
//! `scm-lab` it runs (libpcsclite reads `PCSCLITE_CSOCK_NAME` once per process).

mod control_client;

use control_client::{Control, Run};
use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State, MAX_BUFFER_SIZE};
use std::ffi::CString;
use std::io::{BufRead, Write};
use std::process::Command;
use std::time::Duration;

/// Non-ASCII in two-, three- and four-byte UTF-8 sequences.
const FRIENDLY: &str = "Lecteur é€ 日本 𝄞";

/// The state pcscd reports for `reader` right now.
fn state(context: &Context, reader: &str) -> State {
    let mut states = [ReaderState::new(CString::new(reader).unwrap(), State::UNAWARE)];
    context.get_status_change(Duration::ZERO, &mut states).expect("SCardGetStatusChange");
    states[0].event_state()
}

#[test]
fn control_channel_drives_the_lab_and_names_go_through_as_utf8() {
    let mut lab = Run::start(&["--pairs", "2", "--friendly", &format!("1={FRIENDLY}")]);
    let (socket, address, first) = (&lab.socket, &lab.control, &lab.reader);
    std::env::set_var("PCSCLITE_CSOCK_NAME", socket);
    assert_eq!(first, "Lab A 00 00");

    let mut control = Control::connect(address);
    assert_eq!(control.ask("readers"), "ok 4");
    let names: Vec<String> = (0..4)
        .map(|i| control.ask(&format!("reader {i}")).strip_prefix("ok ").unwrap().to_string())
        .collect();
    let expected = ["Lab A 00 00", "Lab A 00 01", &format!("{FRIENDLY} 00 00"), &format!("{FRIENDLY} 00 01")];
    assert_eq!(names, expected);

    // pcscd reports the FRIENDLYNAME's UTF-8 bytes unchanged.
    let context = Context::establish(Scope::User).unwrap();
    let listed: Vec<Vec<u8>> =
        context.list_readers_owned().unwrap().into_iter().map(|n| n.into_bytes()).collect();
    assert_eq!(listed, expected.map(|n| n.as_bytes().to_vec()));

    // The first card is in before the program starts; insert and remove reply once pcscd agrees.
    assert!(state(&context, &names[0]).contains(State::PRESENT));
    assert!(state(&context, &names[2]).contains(State::EMPTY));
    assert_eq!(control.ask("insert 2"), "ok");
    assert!(state(&context, &names[2]).contains(State::PRESENT));
    assert_eq!(control.ask("remove 0"), "ok");
    assert!(state(&context, &names[0]).contains(State::EMPTY));

    let card =
        context.connect(&CString::new(names[2].clone()).unwrap(), ShareMode::Shared, Protocols::T1).unwrap();
    let mut buf = [0u8; MAX_BUFFER_SIZE];
    assert_eq!(
        card.transmit(&[0x80, 0x10, 0x00, 0x00, 0x01, 0x5A, 0x00], &mut buf).unwrap(),
        [0x5A, 0x90, 0x00]
    );
    drop(card);
    let counters = control.ask("counters 2");
    assert!(counters.starts_with("ok apdus=1 resets="), "{counters}");
    assert!(counters.contains(" connections=1"), "{counters}");

    // A second connection is served while the first stays open.
    assert_eq!(Control::connect(address).ask("readers"), "ok 4");
    assert!(control.ask("reader 4").starts_with("error "));
    assert!(control.ask("insert").starts_with("error "));
    assert!(control.ask("fly").starts_with("error "));
    // An 8 MiB line is refused without being kept (its error does not quote it), and the
    // connection goes on.
    writeln!(control.writer, "{}", "x".repeat(8 << 20)).unwrap();
    let refused = control.ask("readers");
    assert!(refused.starts_with("error ") && refused.len() < 200, "{} bytes: {refused:.100}", refused.len());
    let mut next = String::new();
    control.reader.read_line(&mut next).unwrap();
    assert_eq!(next, "ok 4\n", "the request after the long line");

    assert_eq!(control.ask("kill"), "ok");
    assert!(context.list_readers_owned().is_err());
    assert_eq!(control.ask("start"), "ok");
    let context = Context::establish(Scope::User).unwrap();
    assert_eq!(context.list_readers_owned().unwrap().len(), 4);
    assert!(state(&context, &names[2]).contains(State::PRESENT), "the inserted card is back");
    assert!(state(&context, &names[0]).contains(State::EMPTY), "the removed card stays out");
    assert_eq!(control.ask("restart"), "ok");
    assert!(state(&Context::establish(Scope::User).unwrap(), &names[2]).contains(State::PRESENT));

    writeln!(lab.stdin(), "7").unwrap();
    assert_eq!(lab.child.wait().unwrap().code(), Some(7), "scm-lab passes the program's exit code on");
}

#[test]
fn bad_friendly_names_are_refused() {
    for bad in ["0=", "0=a\"b", "2=Nope", "1=Lab A", "x=Name"] {
        let output = Command::new(env!("CARGO_BIN_EXE_scm-lab"))
            .args(["run", "--friendly", bad, "--", "true"])
            .output()
            .expect("running scm-lab");
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("--friendly {bad:?}: {}", stderr.lines().next().unwrap_or_default());
        assert!(!output.status.success(), "--friendly {bad:?} accepted");
    }
}

#[test]
fn a_friendly_name_that_is_not_utf8_is_taken_as_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    // "Lab \xE9" is Latin-1 for "Lab é": the lab starts only once pcscd has opened every reader.
    let output = Command::new(env!("CARGO_BIN_EXE_scm-lab"))
        .args([OsStr::new("run"), OsStr::new("--pairs"), OsStr::new("2"), OsStr::new("--friendly")])
        .arg(OsStr::from_bytes(b"1=Lab \xE9"))
        .args(["--", "true"])
        .output()
        .expect("running scm-lab");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let refused = Command::new(env!("CARGO_BIN_EXE_scm-lab"))
        .args([OsStr::new("run"), OsStr::new("--friendly")])
        .arg(OsStr::from_bytes(b"0=Lab \xE9\x07"))
        .args(["--", "true"])
        .output()
        .expect("running scm-lab");
    assert!(!refused.status.success(), "a control byte after a Latin-1 one was accepted");
}

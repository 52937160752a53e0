//! `scm-lab run --iso-t0` as a program under test sees it: an ISO card at T=0 in the first
//! reader, ISO cards on every insertion, and the control channel's ISO requests.
//!
//! In a test binary of its own: this process's libpcsclite is pointed at the daemon of the
//! `scm-lab` it runs (libpcsclite reads `PCSCLITE_CSOCK_NAME` once per process).

mod control_client;

use control_client::{Control, Run};
use pcsc::{Card, Context, Protocol, Protocols, Scope, ShareMode, MAX_BUFFER_SIZE};
use scardmanage_lab::iso::{self, IsoOptions};
use std::ffi::CString;
use std::io::Write;

fn transmit(card: &Card, apdu: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; MAX_BUFFER_SIZE];
    card.transmit(apdu, &mut buf).unwrap_or_else(|e| panic!("transmit {apdu:02X?}: {e:?}")).to_vec()
}

#[test]
fn iso_t0_cards_and_their_control_requests() {
    let mut lab = Run::start(&["--iso-t0"]);
    std::env::set_var("PCSCLITE_CSOCK_NAME", &lab.socket);
    let mut control = Control::connect(&lab.control);
    let context = Context::establish(Scope::User).unwrap();
    let connect = |name: &str| {
        context
            .connect(&CString::new(name).unwrap(), ShareMode::Shared, Protocols::T0 | Protocols::T1)
            .unwrap()
    };

    let card = connect(&lab.reader);
    let status = card.status2_owned().unwrap();
    assert_eq!(status.protocol2(), Some(Protocol::T0));
    assert_eq!(status.atr(), iso::atr(IsoOptions::T0));
    let select = [&[0x00, 0xA4, 0x04, 0x04, iso::DF_NAME.len() as u8][..], iso::DF_NAME, &[0x00]].concat();
    assert_eq!(transmit(&card, &select)[0], 0x61, "T=0: the FCP waits for GET RESPONSE");
    assert_eq!(control.ask("iso-commands 0"), "ok 1");

    assert_eq!(control.ask("iso-hostile 0 one-byte-answer"), "ok");
    assert_eq!(transmit(&card, &[0x00, 0xA4, 0x00, 0x0C]), [0x90]);
    assert_eq!(control.ask("iso-hostile 0 none"), "ok");
    assert_eq!(transmit(&card, &[0x00, 0xA4, 0x00, 0x0C]), [0x90, 0x00]);

    // A file changed, then the factory state back.
    let update = [0x00, 0xD6, 0x80 | iso::SFI_SMALL, 0x00, 0x01, b'X'];
    let select_no_fcp = [&[0x00, 0xA4, 0x04, 0x0C, iso::DF_NAME.len() as u8][..], iso::DF_NAME].concat();
    assert_eq!(transmit(&card, &select_no_fcp), [0x90, 0x00]);
    assert_eq!(transmit(&card, &update), [0x90, 0x00]);
    assert_eq!(transmit(&card, &[0x00, 0xB0, 0x00, 0x00, 0x01]), [b'X', 0x90, 0x00]);
    assert_eq!(control.ask("iso-reset 0"), "ok");
    assert_eq!(
        transmit(&card, &[0x00, 0xB0, 0x00, 0x00, 0x01]),
        [0x69, 0x86],
        "a reset card has no current EF"
    );
    assert_eq!(transmit(&card, &select_no_fcp), [0x90, 0x00]);
    assert_eq!(transmit(&card, &[0x00, 0xB0, 0x81, 0x00, 0x01]), [iso::SMALL_CONTENT[0], 0x90, 0x00]);
    assert_eq!(control.ask("iso-commands 0"), "ok 9", "iso-reset keeps the count");

    // Another reader gets an ISO card too.
    assert_eq!(control.ask("insert 1"), "ok");
    let name = control.ask("reader 1").strip_prefix("ok ").unwrap().to_string();
    assert_eq!(connect(&name).status2_owned().unwrap().atr(), iso::atr(IsoOptions::T0));

    assert!(control
        .ask("iso-hostile 0 nope")
        .starts_with("error no hostile mode \"nope\"; the modes are none "));
    assert!(control.ask("iso-hostile 0").starts_with("error "));
    assert!(control.ask("iso-reset 7").starts_with("error "));
    assert!(control.ask("iso-reset 0 1").starts_with("error "));

    drop(card);
    writeln!(lab.stdin(), "0").unwrap();
    assert_eq!(lab.child.wait().unwrap().code(), Some(0));
}

#[test]
fn the_default_lab_has_no_iso_cards() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_scm-lab"))
        .args(["run", "--iso-short", "--iso-t0", "--", "true"])
        .output()
        .expect("running scm-lab");
    assert!(!output.status.success(), "--iso-short with --iso-t0 accepted");
    let mut lab = Run::start(&[]);
    let refused = Control::connect(&lab.control).ask("iso-hostile 0 none");
    assert!(refused.starts_with("error no ISO card"), "{refused}");
    writeln!(lab.stdin(), "0").unwrap();
    assert_eq!(lab.child.wait().unwrap().code(), Some(0));
}

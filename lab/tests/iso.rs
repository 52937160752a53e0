//! The ISO card (`lab::iso`) through the real pcscd and vpcd, as the library will meet it: the
//! protocol its ATR sets, T=0's 61xx / GET RESPONSE and 6Cxx, extended APDUs, command chaining,
//! the 40 000-byte EF read and written, hostile answers as pcscd hands them over, and what a
//! reset clears.

use pcsc::{Card, Context, Disposition, Protocol, Protocols, Scope, ShareMode, MAX_BUFFER_SIZE_EXTENDED};
use scardmanage_lab::iso::{self, Hostile, IsoControl, IsoOptions};
use scardmanage_lab::{lease_with, shared, wait_card, ReaderLease};
use std::ffi::CString;
use std::time::Duration;

const SHOW_UP: Duration = Duration::from_secs(10);

/// A leased reader with an inserted ISO card, a connection to it and the card's control.
struct Session {
    iso: IsoControl,
    lease: ReaderLease,
    context: Context,
    card: Card,
}

fn session(options: IsoOptions) -> Session {
    shared();
    let (card, iso) = iso::card(options);
    let lease = lease_with(card);
    lease.insert();
    assert!(wait_card(lease.name(), true, SHOW_UP), "card never showed up in {}", lease.name());
    let context = Context::establish(Scope::User).expect("establishing a PC/SC context");
    let card = connect(&context, &lease);
    Session { iso, lease, context, card }
}

fn connect(context: &Context, lease: &ReaderLease) -> Card {
    let name = CString::new(lease.name()).unwrap();
    context
        .connect(&name, ShareMode::Shared, Protocols::T0 | Protocols::T1)
        .expect("connecting to the ISO card")
}

fn transmit(card: &Card, apdu: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_BUFFER_SIZE_EXTENDED];
    card.transmit(apdu, &mut buf).unwrap_or_else(|e| panic!("transmit {apdu:02X?}: {e:?}")).to_vec()
}

/// Splits a response into data and status word.
fn split(response: &[u8]) -> (&[u8], u16) {
    let (data, sw) = response.split_at(response.len() - 2);
    (data, u16::from_be_bytes([sw[0], sw[1]]))
}

fn select_df(card: &Card) {
    let apdu = [&[0x00, 0xA4, 0x04, 0x0C, iso::DF_NAME.len() as u8][..], iso::DF_NAME].concat();
    assert_eq!(transmit(card, &apdu), [0x90, 0x00]);
}

#[test]
fn t0_card_answers_61xx_with_get_response_and_6cxx() {
    let s = session(IsoOptions::T0);
    let status = s.card.status2_owned().expect("status");
    assert_eq!(status.protocol2(), Some(Protocol::T0));
    assert_eq!(status.atr(), iso::atr(IsoOptions::T0));

    // Case 4: the FCP comes through GET RESPONSE.
    let select = [&[0x00, 0xA4, 0x04, 0x04, iso::DF_NAME.len() as u8][..], iso::DF_NAME, &[0x00]].concat();
    let first = transmit(&s.card, &select);
    assert_eq!(first[0], 0x61);
    let fcp = transmit(&s.card, &[0x00, 0xC0, 0x00, 0x00, first[1]]);
    let (fcp, sw) = split(&fcp);
    assert_eq!(sw, 0x9000);
    assert_eq!(fcp.len(), usize::from(first[1]));
    assert_eq!(fcp[..2], [0x62, fcp.len() as u8 - 2]);

    // Case 2 with the wrong Le: 6Cxx names the right one.
    let wrong = transmit(&s.card, &[0x00, 0xB0, 0x81, 0x00, 0x00]);
    assert_eq!(wrong, [0x6C, iso::SMALL_CONTENT.len() as u8]);
    let right = transmit(&s.card, &[0x00, 0xB0, 0x81, 0x00, wrong[1]]);
    assert_eq!(split(&right), (iso::SMALL_CONTENT, 0x9000));

    // The whole big EF through short READ BINARYs: the even form up to 32 767, the odd one past it.
    let mut read = Vec::new();
    while read.len() < iso::BIG_SIZE {
        let at = read.len();
        let left = (iso::BIG_SIZE - at).min(if at < 0x8000 { 256 } else { 253 });
        let response = if at < 0x8000 {
            let [hi, lo] = (at as u16).to_be_bytes();
            let le = if at == 0 { [0x82, lo] } else { [hi, lo] };
            transmit(&s.card, &[0x00, 0xB0, le[0], le[1], left as u8])
        } else {
            let offset = (at as u32).to_be_bytes();
            // Case 4 without its Le, as a T=0 transport sends it.
            let first = transmit(
                &s.card,
                &[0x00, 0xB1, 0x00, 0x00, 0x05, 0x54, 0x03, offset[1], offset[2], offset[3]],
            );
            assert_eq!(first[0], 0x61, "at {at}: {first:02X?}");
            let response = transmit(&s.card, &[0x00, 0xC0, 0x00, 0x00, first[1]]);
            let (data, sw) = split(&response);
            assert_eq!(data[0], 0x53);
            let header = if data[1] == 0x81 { 3 } else { 2 };
            [&data[header..], &sw.to_be_bytes()].concat()
        };
        let (data, sw) = split(&response);
        assert_eq!(sw, 0x9000, "at {at}");
        assert!(!data.is_empty());
        read.extend_from_slice(data);
    }
    assert_eq!(read, iso::big_content());
    // Extended APDUs are not for T=0.
    assert_eq!(transmit(&s.card, &[0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00]), [0x67, 0x00]);
    drop(s.lease);
}

#[test]
fn t1_card_takes_extended_and_chained_commands() {
    let s = session(IsoOptions::default());
    let status = s.card.status2_owned().expect("status");
    assert_eq!(status.protocol2(), Some(Protocol::T1));
    assert_eq!(status.atr(), iso::atr(IsoOptions::default()));
    assert_eq!(status.atr()[9] & 0x40, 0x40, "extended length announced");
    select_df(&s.card);

    // One extended UPDATE BINARY (odd form, offset DO 54) writes 40 000 bytes; one extended
    // READ BINARY reads them back.
    let data: Vec<u8> = (0..iso::BIG_SIZE as u32).map(|i| (i * 13 + 5) as u8).collect();
    let mut body = vec![0x54, 0x01, 0x00, 0x53, 0x82, 0x9C, 0x40];
    body.extend_from_slice(&data);
    let mut apdu = vec![0x00, 0xD7, 0x00, iso::SFI_BIG, 0x00];
    apdu.extend_from_slice(&(body.len() as u16).to_be_bytes());
    apdu.extend_from_slice(&body);
    let before = s.iso.commands_received();
    assert_eq!(transmit(&s.card, &apdu), [0x90, 0x00]);
    let read = transmit(&s.card, &[0x00, 0xB0, 0x82, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(split(&read), (&data[..], 0x9000));
    assert_eq!(s.iso.commands_received() - before, 2, "two APDUs for 40 000 bytes each way");
    assert_eq!(s.iso.transparent(&[iso::DF_ID, iso::EF_BIG]).unwrap(), data);

    // A chained UPDATE BINARY: three short parts, one write.
    let chained: Vec<u8> = (0..600u32).map(|i| (i % 7) as u8).collect();
    let parts: Vec<&[u8]> = chained.chunks(255).collect();
    for (i, part) in parts.iter().enumerate() {
        let cla = if i + 1 < parts.len() { 0x10 } else { 0x00 };
        let apdu = [&[cla, 0xD6, 0x81 + 1, 0x00, part.len() as u8][..], part].concat();
        assert_eq!(transmit(&s.card, &apdu), [0x90, 0x00], "part {i}");
    }
    assert_eq!(s.iso.transparent(&[iso::DF_ID, iso::EF_BIG]).unwrap()[..600], chained);
    drop(s.lease);
}

#[test]
fn hostile_answers_reach_the_caller_as_the_card_sent_them() {
    let s = session(IsoOptions::default());
    s.iso.set_hostile(Hostile::OneByteAnswer);
    assert_eq!(transmit(&s.card, &[0x00, 0xA4, 0x00, 0x0C]), [0x90]);
    s.iso.set_hostile(Hostile::EndlessGetResponse);
    assert_eq!(transmit(&s.card, &[0x00, 0xB0, 0x81, 0x00, 0x00]), [0x61, 0x00]);
    for _ in 0..3 {
        assert_eq!(split(&transmit(&s.card, &[0x00, 0xC0, 0x00, 0x00, 0x00])).1, 0x6100);
    }
    s.iso.set_hostile(Hostile::None);
    assert_eq!(transmit(&s.card, &[0x00, 0xA4, 0x00, 0x0C]), [0x90, 0x00]);
    drop(s.lease);
}

#[test]
fn a_reset_clears_the_verified_pin_but_not_the_files() {
    let s = session(IsoOptions::default());
    select_df(&s.card);
    let verify = [&[0x00, 0x20, 0x00, iso::PIN_REF, iso::PIN.len() as u8][..], iso::PIN].concat();
    assert_eq!(transmit(&s.card, &verify), [0x90, 0x00]);
    assert_eq!(split(&transmit(&s.card, &[0x00, 0xB0, 0x84, 0x00, 0x00])), (iso::SECRET_CONTENT, 0x9000));
    assert_eq!(transmit(&s.card, &[0x00, 0xD6, 0x81, 0x00, 0x01, b'X']), [0x90, 0x00]);
    s.card.disconnect(Disposition::ResetCard).map_err(|(_, e)| e).expect("disconnecting with a reset");

    let card = connect(&s.context, &s.lease);
    assert_eq!(transmit(&card, &[0x00, 0x20, 0x00, iso::PIN_REF]), [0x63, 0xC3], "no longer verified");
    assert_eq!(transmit(&card, &[0x00, 0xB0, 0x00, 0x00, 0x00]), [0x69, 0x86], "no current EF");
    select_df(&card);
    assert_eq!(transmit(&card, &[0x00, 0xB0, 0x84, 0x00, 0x00]), [0x69, 0x82]);
    let small = transmit(&card, &[0x00, 0xB0, 0x81, 0x00, 0x00]);
    assert_eq!(split(&small), (&[b"X", &iso::SMALL_CONTENT[1..]].concat()[..], 0x9000), "the update stayed");

    // Out of the reader and back: the same card, the same files.
    drop(card);
    s.lease.card().remove();
    assert!(wait_card(s.lease.name(), false, SHOW_UP));
    std::thread::sleep(Duration::from_millis(500));
    s.lease.insert();
    assert!(wait_card(s.lease.name(), true, SHOW_UP));
    let card = connect(&s.context, &s.lease);
    select_df(&card);
    assert_eq!(transmit(&card, &[0x00, 0xB0, 0x81, 0x00, 0x01]), [b'X', 0x90, 0x00]);
    drop(card);
    drop(s.lease);
}

//! The lab against the real pcscd: readers, the default card, insertion and removal, a card
//! pulled mid-exchange, and the APDU round-trip time everything else is measured against.

use pcsc::{Card, Context, Protocol, Protocols, Scope, ShareMode, MAX_BUFFER_SIZE_EXTENDED};
use scardmanage_lab::{
    default_applet, lease, lease_with, shared, wait_card, Lab, ReaderLease, Reply, VirtualCard, DEFAULT_ATR,
};
use std::ffi::CString;
use std::time::{Duration, Instant};

const SHOW_UP: Duration = Duration::from_secs(10);

/// A context of this process; `shared()` first, so libpcsclite reads the lab's socket.
fn context() -> Context {
    shared();
    Context::establish(Scope::User).expect("establishing a PC/SC context")
}

/// Inserts the lease's card and connects to it once pcscd has seen it.
fn connect_inserted(lease: &ReaderLease) -> (Context, Card) {
    let ctx = context();
    lease.insert();
    assert!(wait_card(lease.name(), true, SHOW_UP), "card never showed up in {}", lease.name());
    let name = CString::new(lease.name()).unwrap();
    let card = ctx
        .connect(&name, ShareMode::Shared, Protocols::T0 | Protocols::T1)
        .expect("connecting to the virtual card");
    (ctx, card)
}

fn transmit(card: &Card, apdu: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_BUFFER_SIZE_EXTENDED];
    card.transmit(apdu, &mut buf).unwrap_or_else(|e| panic!("transmit {apdu:02X?}: {e:?}")).to_vec()
}

#[test]
fn shared_lab_lists_sixteen_readers() {
    let ctx = context();
    let listed: Vec<String> = ctx
        .list_readers_owned()
        .expect("listing readers")
        .into_iter()
        .map(|n| n.into_string().unwrap())
        .collect();
    let expected: Vec<String> = shared().readers().iter().map(|r| r.name.clone()).collect();
    assert_eq!(expected.len(), 16);
    assert_eq!(listed, expected);
    assert_eq!(expected[0], "Lab A 00 00");
    assert_eq!(expected[15], "Lab H 00 01");
}

#[test]
fn default_card_connects_t1_and_answers() {
    let lease = lease();
    let (_ctx, card) = connect_inserted(&lease);

    let status = card.status2_owned().expect("status");
    assert_eq!(status.protocol2(), Some(Protocol::T1));
    assert_eq!(status.atr(), DEFAULT_ATR);

    assert_eq!(transmit(&card, &[0x00, 0xA4, 0x04, 0x00, 0x03, 0xA0, 0x00, 0x01]), [0x90, 0x00]);
    assert_eq!(transmit(&card, &[0x80, 0x10, 0x00, 0x00, 0x03, 1, 2, 3, 0x00]), [1, 2, 3, 0x90, 0x00]);
    let short = transmit(&card, &[0x80, 0x20, 0x00, 0xFF, 0x00]);
    assert_eq!(short.len(), 257);
    assert!(short[..255].iter().enumerate().all(|(i, &b)| b == i as u8));
    assert_eq!(short[255..], [0x90, 0x00]);
    // Extended Le: a response longer than 256 bytes through pcscd and vpcd.
    let long = transmit(&card, &[0x80, 0x20, 0x10, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(long.len(), 0x1000 + 2);
    assert_eq!(long[0x1FF], 0xFF);
    let a = transmit(&card, &[0x00, 0x84, 0x00, 0x00, 0x08]);
    let b = transmit(&card, &[0x00, 0x84, 0x00, 0x00, 0x08]);
    assert_eq!((a.len(), b.len()), (10, 10));
    assert_ne!(a, b);
    assert_eq!(transmit(&card, &[0x00, 0xB0, 0x00, 0x00, 0x00]), [0x6D, 0x00]);

    let counters = lease.card().counters();
    assert!(counters.power_on >= 1, "{counters:?}");
    assert_eq!(counters.apdus, 7, "{counters:?}");
    assert_eq!(counters.connections, 1, "{counters:?}");
}

#[test]
fn removal_and_reinsertion_are_seen() {
    let lease = lease();
    let (_ctx, card) = connect_inserted(&lease);
    drop(card);

    let removed = Instant::now();
    lease.card().remove();
    assert!(!lease.card().is_inserted());
    assert!(wait_card(lease.name(), false, SHOW_UP), "removal not seen");
    eprintln!("removal seen after {:?}", removed.elapsed());

    let inserted = Instant::now();
    let (_ctx, card) = connect_inserted(&lease);
    eprintln!("re-insertion seen after {:?}", inserted.elapsed());
    assert_eq!(lease.card().counters().connections, 2);
    assert_eq!(transmit(&card, &[0x80, 0x10, 0x00, 0x00, 0x01, 0x5A]), [0x5A, 0x90, 0x00]);
}

#[test]
fn a_vanishing_card_fails_the_transmit() {
    let vanishing = VirtualCard::new(DEFAULT_ATR.to_vec(), |apdu: &[u8]| {
        if apdu.get(1) == Some(&0x10) {
            Reply::Vanish
        } else {
            default_applet(apdu)
        }
    });
    let lease = lease_with(vanishing);
    let (_ctx, card) = connect_inserted(&lease);
    assert_eq!(transmit(&card, &[0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0]), [0x90, 0x00]);

    let started = Instant::now();
    let mut buf = [0u8; 258];
    let result = card.transmit(&[0x80, 0x10, 0x00, 0x00, 0x01, 0x00], &mut buf);
    let took = started.elapsed();
    eprintln!("transmit to a vanishing card: {result:?} after {took:?}");
    assert!(result.is_err(), "transmit succeeded: {result:?}");
    assert!(took < Duration::from_secs(5), "transmit took {took:?}");
    assert!(!lease.card().is_inserted());
    assert!(wait_card(lease.name(), false, SHOW_UP));

    // The reader stays usable once pcscd's poller has seen it empty.
    drop(card);
    std::thread::sleep(Duration::from_millis(500));
    let next = VirtualCard::with_default_applet();
    next.insert(lease.port());
    assert!(wait_card(lease.name(), true, SHOW_UP), "reader unusable after a vanish");
    next.remove();
}

#[test]
fn echo_round_trip_median() {
    let lease = lease();
    let (_ctx, card) = connect_inserted(&lease);
    let apdu = [0x80, 0x10, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00];
    let mut buf = [0u8; 258];
    for _ in 0..50 {
        card.transmit(&apdu, &mut buf).expect("warm-up transmit");
    }
    let mut times: Vec<Duration> = (0..2000)
        .map(|_| {
            let start = Instant::now();
            let response = card.transmit(&apdu, &mut buf).expect("transmit");
            let took = start.elapsed();
            assert_eq!(response.len(), 10);
            took
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "ECHO round trip through pcscd over 2000 transmits: median {median:?}, p90 {:?}, max {:?}",
        times[times.len() * 9 / 10],
        times[times.len() - 1]
    );
    // ~80 µs is normal; tens of ms means delayed ACK and Nagle are back.
    assert!(median < Duration::from_millis(5), "median {median:?}");
}

/// A second, private lab beside the shared one. No PC/SC calls here: this process's
/// libpcsclite is bound to the shared lab's socket.
#[test]
fn private_lab_starts_restarts_and_cleans_up() {
    let mut lab = Lab::start(1).expect("starting a private lab");
    let dir = lab.dir().to_path_buf();
    let readers = lab.readers().to_vec();
    assert_eq!(readers.len(), 2);
    assert_eq!(readers[0].name, "Lab A 00 00");
    assert_eq!(readers[1].name, "Lab A 00 01");
    assert_eq!(readers[1].port, readers[0].port + 1);
    assert!(lab.socket_path().exists());
    assert!(lab.is_running());

    lab.kill();
    assert!(!lab.is_running());
    let started = Instant::now();
    lab.restart().expect("restarting the private lab");
    eprintln!("private lab restarted in {:?}", started.elapsed());
    assert!(lab.is_running());
    assert_eq!(lab.readers(), readers);
    assert!(lab.log_tail().contains("restarting pcscd"));

    drop(lab);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

//! Killing and restarting the shared daemon. In a test binary of its own because every test
//! of a process shares that daemon (libpcsclite reads `PCSCLITE_CSOCK_NAME` once per process).

use pcsc::{Context, Protocols, Scope, ShareMode, MAX_BUFFER_SIZE};
use scardmanage_lab::{lease, shared, wait_card};
use std::ffi::CString;
use std::time::{Duration, Instant};

const ECHO: &[u8] = &[0x80, 0x10, 0x00, 0x00, 0x02, 0xCA, 0xFE, 0x00];

#[test]
fn a_killed_daemon_fails_old_contexts_and_comes_back() {
    let lab = shared();
    let lease = lease();
    lease.insert();
    assert!(wait_card(lease.name(), true, Duration::from_secs(10)));
    let name = CString::new(lease.name()).unwrap();
    let mut buf = [0u8; MAX_BUFFER_SIZE];

    let old = Context::establish(Scope::User).unwrap();
    let old_card = old.connect(&name, ShareMode::Shared, Protocols::T1).unwrap();
    assert_eq!(old_card.transmit(ECHO, &mut buf).unwrap(), [0xCA, 0xFE, 0x90, 0x00]);

    lab.kill();
    let listed = old.list_readers_owned();
    let sent = old_card.transmit(ECHO, &mut buf).map(<[u8]>::to_vec);
    eprintln!("after kill: list_readers {listed:?}, transmit {sent:?}");
    assert!(listed.is_err());
    assert!(sent.is_err());

    let started = Instant::now();
    lab.restart().expect("restarting the shared lab");
    eprintln!("daemon restarted in {:?}", started.elapsed());
    let new = Context::establish(Scope::User).unwrap();
    assert_eq!(new.list_readers_owned().unwrap().len(), 16);
    assert!(
        wait_card(lease.name(), true, Duration::from_secs(10)),
        "card not seen after restart\n{}",
        lab.log_tail()
    );
    eprintln!("card present again {:?} after restart began", started.elapsed());
    assert_eq!(old.list_readers_owned().map(|r| r.len()).ok(), None);

    let card = new.connect(&name, ShareMode::Shared, Protocols::T0 | Protocols::T1).unwrap();
    assert_eq!(card.transmit(ECHO, &mut buf).unwrap(), [0xCA, 0xFE, 0x90, 0x00]);
    let counters = lease.card().counters();
    assert!(counters.connections >= 2, "{counters:?}");
    assert!(counters.power_on >= 2, "{counters:?}");
}

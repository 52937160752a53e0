//! pcscd killed and restarted while managers are attached: calls fail with NO_SERVICE instead
//! of hanging, and `scm_reconnect` recovers (a new context), as does `scm_list_readers`.
//! A test binary of its own: killing the daemon would disturb every other test of the process.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::time::{Duration, Instant};

use common::*;
use scardmanage::*;
use scardmanage_lab::{shared, wait_card};

#[test]
fn reconnect_recovers_after_the_service_restarts() {
    let with_card = lease_with_card();
    let empty = scardmanage_lab::lease();
    let manager = Manager::attached(with_card.name());
    let locked = Manager::attached(with_card.name());
    let readerless = Manager::attached(empty.name());
    echo_ok(&manager, b"before");
    ok(locked.lock());

    shared().kill();
    let started = Instant::now();
    // As tests/service_faults.rs asserts call by call (RELIABILITY.md): with no call in flight
    // when the daemon died, every call that asks PC/SC gets NO_SERVICE, within 500 ms.
    let failure = manager.transmit(&echo_apdu(b"x")).unwrap_err();
    eprintln!("transmit with the service down: {failure:#010x} ({})", message_of(failure));
    assert_eq!(failure, SCM_SCARD_E_NO_SERVICE, "transmit: {}", message_of(failure));
    assert_eq!(manager.status(), Err(SCM_SCARD_E_NO_SERVICE));
    assert_eq!(readerless.status(), Err(SCM_SCARD_E_NO_SERVICE));
    assert_eq!(manager.reconnect(), SCM_SCARD_E_NO_SERVICE, "nothing to reconnect to yet");
    assert_eq!(list_readers(), Err(SCM_SCARD_E_NO_SERVICE));
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "failures came back at once: {:?}",
        started.elapsed()
    );

    shared().restart().expect("the daemon restarts");
    assert!(wait_card(with_card.name(), true, WAIT), "the card is back in its reader");
    let readers = list_readers().expect("readers are listed again after the restart");
    assert!(readers.iter().any(|name| name == with_card.name()));

    // The old context answers NO_SERVICE forever; reconnect establishes a new one.
    ok(manager.reconnect());
    echo_ok(&manager, b"after");
    assert_eq!(manager.status(), Ok((SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1)));
    ok(locked.reconnect());
    ok(locked.lock());
    echo_ok(&locked, b"locked again");
    ok(locked.unlock(SCM_LEAVE_CARD));
    assert_eq!(
        readerless.status(),
        Err(SCM_SCARD_E_NO_SERVICE),
        "until reconnected, the old context is dead"
    );
    assert_eq!(readerless.reconnect(), SCM_SCARD_E_NO_SMARTCARD, "new context, still no card");
    assert_eq!(readerless.status(), Ok((SCM_STATE_ABSENT, SCM_PROTOCOL_UNDEFINED)));
}

//! Tests written for mutants that `.ci/mutants` found missed and that only a pcscd outage
//! reaches (RELIABILITY.md, "Mutation testing"). A test binary of its own: killing the daemon
//! would disturb every other test of the process.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::sync::Mutex;

use common::*;
use pcsc::ffi;
use scardmanage::*;
use scardmanage_lab::{shared, wait_card};

/// The daemon is killed and restarted by each test here: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn is_service_lost(hr: scm_hresult) -> bool {
    [SCM_SCARD_E_NO_SERVICE, SCM_SCARD_F_COMM_ERROR, SCM_SCARD_E_SERVICE_STOPPED].contains(&hr)
}

/// With pcscd gone, attaching a card handle reports the loss and leaves the manager unattached
/// (the mutant "match guard scard::is_service_lost(code) with false" in `attach_handle` takes
/// the failed status for a reset card and attaches).
#[test]
fn attaching_a_handle_with_the_service_gone_reports_it() {
    let _alone = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lease = lease_with_card();
    let owner = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_SHARED).expect("connected");
    shared().kill();
    let manager = Manager::new();
    let hr = unsafe { scm_attach_by_handle(manager.0, owner.handle as scm_hscard) };
    shared().restart().expect("the daemon restarts");
    assert!(is_service_lost(hr), "attach_by_handle with pcscd gone: {hr:#010x} {}", message_of(hr));
    assert_eq!(manager.status(), Err(SCM_E_NOT_ATTACHED));
}

/// A detach while pcscd is gone releases the dead context instead of keeping it for the next
/// attachment. Kept (the mutant "match guard scard::is_service_lost(code) with false" in
/// `detach`), it is what the library asks, after the restart, whether a borrowed handle holds
/// its reader exclusively: the dead context says no, and reconnecting the borrowed handle then
/// turns its owner's exclusive connection into a shared one.
#[test]
fn a_context_lost_with_the_service_is_not_kept() {
    let _alone = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    shared().kill();
    assert!(is_service_lost(manager.detach()));
    shared().restart().expect("the daemon restarts");
    assert!(wait_card(lease.name(), true, WAIT), "the card is back");

    let owner = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_EXCLUSIVE).expect("exclusive");
    let borrower = Manager::borrowing(&owner);
    ok(borrower.reconnect());
    // With the owner's connection made shared, pcscd may keep this connect waiting: bounded.
    let reader = lease.name().to_string();
    let other = within(WAIT, "another connect", move || {
        RawConnection::connect(&reader, ffi::SCARD_SHARE_SHARED).err()
    });
    assert_eq!(
        other,
        Some(SCM_SCARD_E_SHARING_VIOLATION),
        "the owner's connection is still exclusive after the borrower's reconnect"
    );
}

//! Tests written for mutants that `.ci/mutants` found missed (RELIABILITY.md, "Mutation
//! testing"): each asserts a behaviour a user relies on that no other test pinned down.

mod common;

use std::ffi::CString;

use common::*;
use scardmanage::*;

/// A reconnect that PC/SC refuses for a reason that leaves the handle good (here
/// PROTO_MISMATCH: another connection asked for RAW, which pcsc-lite 1.9.9 switches the card
/// to even when that connect then fails) reports the refusal and keeps the connection: the
/// manager still has the same card handle. Dropping it would turn a refused reconnect into a
/// lost connection (the mutant "needs_new_connection -> true" in src/manager.rs).
#[test]
fn a_refused_reconnect_keeps_the_connection() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let handle = manager.handle().expect("attached with the card in");

    let other = Manager::new();
    let name = CString::new(lease.name()).unwrap();
    // Its result is pcsc-lite's business (SHARING_VIOLATION or S_OK); what matters is the
    // card's protocol afterwards.
    let _ = unsafe { scm_attach_by_ifd_ex(other.0, name.as_ptr(), SCM_SHARE_SHARED, SCM_PROTOCOL_RAW) };

    let hr = manager.reconnect();
    assert_eq!(hr, SCM_SCARD_E_PROTO_MISMATCH, "reconnect: {hr:#010x} {}", message_of(hr));
    assert_eq!(manager.handle(), Ok(handle), "the refused reconnect kept the card handle");
}

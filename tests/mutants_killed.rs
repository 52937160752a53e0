//! Tests written for mutants that `.ci/mutants` found missed (RELIABILITY.md, "Mutation
//! testing"): each asserts a behaviour a user relies on that no other test pinned down.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::ffi::CString;
use std::ptr;
use std::sync::Mutex;

use common::*;
use pcsc::ffi;
use scardmanage::test_hooks::{script, scripted_left, Answer, Call};
use scardmanage::*;

/// The tests here count this process's connections to pcscd, or change a card's protocol: one
/// at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A reconnect that PC/SC refuses for a reason that leaves the handle good (here
/// PROTO_MISMATCH: another connection asked for RAW, which pcsc-lite 1.9.9 switches the card to)
/// reports the refusal and keeps the connection: the manager still has the same card handle.
/// Treating the refusal as a lost connection (the mutants "needs_new_connection -> true" and
/// "match guard !needs_new_connection(code) with false" in src/manager.rs) drops the handle.
#[test]
fn a_refused_reconnect_keeps_the_connection() {
    let _alone = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let handle = manager.handle().expect("attached with the card in");
    let other = Manager::new();
    let name = CString::new(lease.name()).unwrap();
    // Its own result is pcsc-lite's business; what matters is the card's protocol afterwards.
    let _ = unsafe { scm_attach_by_ifd_ex(other.0, name.as_ptr(), SCM_SHARE_SHARED, SCM_PROTOCOL_RAW) };
    let hr = manager.reconnect();
    assert_eq!(hr, SCM_SCARD_E_PROTO_MISMATCH, "reconnect: {hr:#010x} {}", message_of(hr));
    assert_eq!(manager.handle(), Ok(handle), "the refused reconnect kept the card handle");
}

/// Sockets this process has open: each PC/SC context of pcsc-lite is one, to pcscd.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// An attach after a detach reuses the context the detach kept: no new connection to pcscd
/// (establishing one is most of an attach's cost, see BENCHMARKS.md). The mutant "keep -> ()"
/// in src/spare_contexts.rs releases every context at detach instead.
#[test]
fn an_attach_after_a_detach_opens_no_new_connection_to_pcscd() {
    let _alone = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    ok(manager.detach());
    let detached = open_sockets();
    for round in 0..3 {
        ok(manager.attach(lease.name()));
        assert_eq!(open_sockets(), detached, "round {round}: the attachment opened a socket");
        ok(manager.detach());
    }
}

/// A reader query that PC/SC refuses without the service being lost (an attribute the driver
/// does not answer, asked of an empty reader on a direct connection through a spare context)
/// gives that context back for later calls: no connection to pcscd is closed, and none is opened
/// for the next. The mutant "match guard is_service_lost(*code) -> true" in `with_spare`
/// (src/spare_contexts.rs) releases the context after every refusal.
#[test]
fn a_refused_reader_query_keeps_its_context() {
    let _alone = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let empty = scardmanage_lab::lease();
    let manager = Manager::attached(empty.name());
    // A detach keeps its context: there is a spare for the queries to take.
    let other = Manager::attached(empty.name());
    ok(other.detach());
    let kept = open_sockets();
    for round in 0..3 {
        let mut value = [0u8; 64];
        let mut len = value.len();
        // SAFETY: `len` bytes of room at `value`.
        let hr =
            unsafe { scm_get_attrib(manager.0, SCM_ATTR_VENDOR_IFD_SERIAL_NO, value.as_mut_ptr(), &mut len) };
        assert_eq!(hr, SCM_SCARD_E_UNSUPPORTED_FEATURE, "round {round}: {}", message_of(hr));
        assert_eq!(open_sockets(), kept, "round {round}: the refused query's context was not kept");
    }
    ok(other.attach(empty.name()));
    assert_eq!(open_sockets(), kept, "the next attachment opened a connection");
}

/// Idle contexts are kept for later attachments, but only a few (four, src/spare_contexts.rs):
/// each holds a connection and a thread in pcscd. Detaching six managers releases two contexts.
/// The mutants of the bound in `keep` keep five, or none.
#[test]
fn detaching_many_managers_keeps_four_contexts() {
    let _alone = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lease = lease_with_card();
    // Six attachments take every kept context (there are at most four) and establish the rest.
    let managers: Vec<Manager> = (0..6).map(|_| Manager::attached(lease.name())).collect();
    let attached = open_sockets();
    for manager in &managers {
        ok(manager.detach());
    }
    assert_eq!(attached - open_sockets(), 2, "of six contexts, four are kept");
}

/// Every code the header defines has a text of its own, not the one for values the library does
/// not know (the mutants deleting a match arm of `message` in src/hresult.rs).
#[test]
fn every_code_in_the_header_has_its_own_message() {
    let header = include_str!("../include/scardmanage.h");
    // The texts for values the library does not know: one for successes, one for failures.
    let unknown = [message_of(0x1234_5678), message_of(0x8765_4321_u32 as i32)];
    let mut codes = 0;
    for line in header.lines() {
        let Some((name, value)) =
            line.strip_prefix("#define SCM_").and_then(|l| l.split_once(" ((scm_hresult)0x"))
        else {
            continue;
        };
        let value =
            u32::from_str_radix(value.trim_end_matches("))").trim_end_matches(')'), 16).unwrap() as i32;
        assert!(!unknown.contains(&message_of(value)), "SCM_{name} ({value:#010x}) has no text of its own");
        codes += 1;
    }
    assert!(codes > 60, "the header's codes were found ({codes})");
}

/// A borrowed handle connected RAW stays RAW: reconnecting it asks PC/SC for RAW again, as its
/// owner connected it (the mutant deleting the RAW arm of `attach_handle` asks for T=0 or T=1,
/// which a card in RAW refuses with PROTO_MISMATCH).
#[test]
fn a_borrowed_raw_handle_reconnects_raw() {
    let _alone = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lease = lease_with_card();
    let owner = connect_raw(lease.name());
    let manager = Manager::borrowing(&owner);
    let hr = manager.reconnect();
    assert_eq!(hr, SCM_S_OK, "reconnect: {hr:#010x} {}", message_of(hr));
    assert_eq!(manager.status().map(|(_, protocol)| protocol), Ok(SCM_PROTOCOL_RAW));
}

/// A connection of the test's own with the RAW protocol (`RawConnection::connect` asks for T=0
/// or T=1); dropped like any `RawConnection`.
fn connect_raw(reader: &str) -> RawConnection {
    let name = CString::new(reader).unwrap();
    let (mut context, mut handle, mut protocol) = (0, 0, 0);
    // SAFETY: valid out-pointers; both are released by RawConnection's Drop.
    unsafe {
        assert_eq!(
            ffi::SCardEstablishContext(ffi::SCARD_SCOPE_USER, ptr::null(), ptr::null(), &mut context),
            0
        );
        let rv = ffi::SCardConnect(
            context,
            name.as_ptr(),
            ffi::SCARD_SHARE_SHARED,
            ffi::SCARD_PROTOCOL_RAW,
            &mut handle,
            &mut protocol,
        );
        assert_eq!(rv, 0, "SCardConnect RAW: {:#010x}", rv as u32);
    }
    RawConnection { context, handle, protocol }
}

/// Set in the child process of `a_first_call_made_while_unwinding_returns`.
const UNWINDING_CHILD: &str = "SCM_MUTANTS_UNWINDING_CHILD";

/// The process's first call into the library, made by a destructor while the host's own panic
/// unwinds, returns its code like any other: the library installs its quiet panic hook only
/// outside an unwinding (the standard library refuses to change the hook from a panicking
/// thread, and that refusal, a panic in a destructor during a panic, would abort the host). The
/// mutants `&&` → `||` in `boundary` (src/capi.rs) install it there. In a child process, so that
/// this call is the first.
#[test]
fn a_first_call_made_while_unwinding_returns() {
    if std::env::var_os(UNWINDING_CHILD).is_some() {
        return first_call_while_unwinding();
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_first_call_made_while_unwinding_returns", "--nocapture", "--test-threads=1"])
        .env(UNWINDING_CHILD, "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the child runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the child ended with {:?}\n{stderr}", output.status);
    assert!(stderr.contains("scm_create during the unwinding: 0x00000000"), "{stderr}");
}

fn first_call_while_unwinding() {
    struct CreatesOnDrop;
    impl Drop for CreatesOnDrop {
        fn drop(&mut self) {
            let mut manager = ptr::null_mut();
            let hr = unsafe { scm_create(&mut manager) };
            eprintln!("scm_create during the unwinding: {hr:#010x}");
            ok(unsafe { scm_release(manager) });
        }
    }
    let unwound = std::panic::catch_unwind(|| {
        let _creates = CreatesOnDrop;
        panic!("the host's own panic");
    });
    assert!(unwound.is_err());
}

/// An unlock that PC/SC refuses because of a reset or power-down it reports first (pcsc-lite
/// checks the card's events before ending the transaction, so the transaction stays held) keeps
/// the lock as the manager's, and `scm_reconnect` then ends it, as the header says: another
/// manager on the card can lock it next. The mutant "match guard is_service_lost(code) ||
/// is_card_absent(code) -> true" in `Manager::unlock` (src/manager.rs) forgets the lock there,
/// so nothing ends the transaction and the card stays locked for everyone else. pcsc-lite 1.9.9
/// never gives these answers here (another connection's reset waits for the unlock): the test
/// hook gives them, as Windows can.
#[test]
fn an_unlock_answered_with_a_reset_leaves_the_lock_for_reconnect_to_end() {
    let _alone = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lease = lease_with_card();
    for refusal in [SCM_SCARD_W_RESET_CARD, SCM_SCARD_W_UNPOWERED_CARD] {
        let manager = Manager::attached(lease.name());
        ok(manager.lock());
        script(Call::EndTransaction, Answer::Fail(refusal));
        assert_eq!(manager.unlock(SCM_LEAVE_CARD), refusal);
        ok(manager.reconnect());
        let name = lease.name().to_string();
        let hr = within(WAIT, "another manager's lock after the reconnect", move || {
            let other = Manager::attached(&name);
            let hr = other.lock();
            ok(other.unlock(SCM_LEAVE_CARD));
            hr
        });
        assert_eq!(hr, SCM_S_OK, "{refusal:#x}: another manager's lock");
        echo_ok(&manager, b"still attached");
    }
    assert_eq!(scripted_left(), []);
}

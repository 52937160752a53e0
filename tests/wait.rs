//! `scm_wait_for_change` and `scm_cancel` against the real pcscd of the lab: insertions and
//! removals seen, a swap between two waits reported, timeouts, cancel and release from other
//! threads, other calls going on while a wait blocks, and a service restart during a wait.
//!
//! Every case runs twice: once here, relying on pcsc-lite's event counter, and once more in a
//! child process of this very binary with `SCM_READER_POLL_MS` set (state comparison at an
//! interval, as on macOS), where the cases that depend on the counter check what the header
//! says is then not seen.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::sync::RwLock;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use scardmanage::*;
use scardmanage_lab::{lease, shared, wait_card, ReaderLease};

/// The restart test stops the daemon every other test uses: it runs alone.
static DAEMON: RwLock<()> = RwLock::new(());

/// pcscd looks for cards every 400 ms; on a loaded 2-core machine a change can take a few
/// polls to show.
const SEEN: Duration = Duration::from_secs(10);
/// How long a cancel or a release may take to end a wait. pcsc-lite's cancel is one message
/// to pcscd; the bound leaves room for a loaded 2-core machine.
const ENDS_WITHIN: Duration = Duration::from_millis(500);
/// A removed card's reader rests this long before the next card goes in: pcscd's poller must
/// see it empty, or it never powers the new card.
const SETTLE: Duration = Duration::from_millis(600);

fn polling() -> bool {
    std::env::var_os("SCM_READER_POLL_MS").is_some()
}

/// `scm_wait_for_change`: the code, the state written (0xEEEE when none), and how long it took.
fn wait(manager: &Manager, timeout_ms: u32) -> (scm_hresult, u32, Duration) {
    let mut state = 0xEEEE;
    let started = Instant::now();
    // SAFETY: a valid out-pointer.
    let hr = unsafe { scm_wait_for_change(manager.0, timeout_ms, &mut state) };
    (hr, state, started.elapsed())
}

#[track_caller]
fn changed_to(manager: &Manager, expected: u32) -> Duration {
    let (hr, state, took) = wait(manager, SEEN.as_millis() as u32);
    assert_eq!(hr, SCM_S_OK, "{hr:#010x}: {}", message_of(hr));
    assert_eq!(state, expected);
    took
}

#[track_caller]
fn no_change_within(manager: &Manager, ms: u32) {
    let (hr, state, took) = wait(manager, ms);
    assert_eq!((hr, state), (SCM_SCARD_E_TIMEOUT, 0xEEEE), "{hr:#010x}: {}", message_of(hr));
    assert!(took >= Duration::from_millis(ms.into()), "a timeout never ends early: {took:?}");
}

/// A change that only the reader's event counter tells (the card's presence is as it was): the
/// next wait reports it at once, except when waits poll states and cannot see it.
#[track_caller]
fn reported_at_once_unless_polling(manager: &Manager, state: u32) {
    if !polling() {
        let took = changed_to(manager, state);
        assert!(took < Duration::from_secs(2), "reported at once: {took:?}");
    }
    no_change_within(manager, 300);
}

/// A manager attached to an empty reader, into which a card then goes while nobody waits.
fn attached_empty_then_card_in() -> (ReaderLease, Manager) {
    let lease = lease();
    let manager = Manager::attached(lease.name());
    lease.insert();
    assert!(wait_card(lease.name(), true, SEEN));
    (lease, manager)
}

/// A wait of at most `SEEN` on another thread, blocked in pcscd by the time this returns: the
/// wait says when it has started (a test hook), and then has 300 ms to reach pcscd, however
/// late its thread was scheduled.
fn blocked_wait<'scope, 'env>(
    scope: &'scope thread::Scope<'scope, 'env>,
    manager: &'env Manager,
) -> thread::ScopedJoinHandle<'scope, (scm_hresult, u32, Duration)> {
    let (started, has_started) = std::sync::mpsc::channel();
    let waiter = scope.spawn(move || {
        scardmanage::test_hooks::in_next_wait_start(move || started.send(()).unwrap());
        wait(manager, SEEN.as_millis() as u32)
    });
    has_started.recv_timeout(SEEN).expect("the wait started");
    thread::sleep(Duration::from_millis(300));
    waiter
}

fn remove_and_settle(lease: &ReaderLease) {
    lease.card().remove();
    assert!(wait_card(lease.name(), false, SEEN));
    thread::sleep(SETTLE);
}

#[test]
fn insertion_and_removal_are_seen() {
    let _daemon = DAEMON.read();
    let lease = lease();
    let manager = Manager::attached(lease.name());
    assert_eq!(manager.status(), Ok((SCM_STATE_ABSENT, SCM_PROTOCOL_UNDEFINED)));
    thread::scope(|scope| {
        scope.spawn(|| {
            thread::sleep(Duration::from_millis(300));
            lease.insert();
        });
        let took = changed_to(&manager, SCM_STATE_PRESENT);
        eprintln!("insertion seen after {took:?}");
    });
    no_change_within(&manager, 300);
    ok(manager.reconnect());
    echo_ok(&manager, b"inserted");
    thread::scope(|scope| {
        scope.spawn(|| {
            thread::sleep(Duration::from_millis(300));
            lease.card().remove();
        });
        changed_to(&manager, SCM_STATE_ABSENT);
    });
    no_change_within(&manager, 300);
}

#[test]
fn a_card_swapped_between_two_waits_is_reported() {
    let _daemon = DAEMON.read();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    echo_ok(&manager, b"first card");
    no_change_within(&manager, 200);
    // Out and in again while nobody waits: the manager's connection is to the card that left.
    remove_and_settle(&lease);
    lease.insert();
    assert!(wait_card(lease.name(), true, SEEN));
    let took = changed_to(&manager, SCM_STATE_PRESENT);
    assert!(took < Duration::from_secs(2), "reported at once, not at the next change: {took:?}");
    no_change_within(&manager, 300);
    // Once more after that wait, now that the manager last saw the reader, not a connection:
    // only the reader's event counter tells this swap.
    remove_and_settle(&lease);
    lease.insert();
    assert!(wait_card(lease.name(), true, SEEN));
    reported_at_once_unless_polling(&manager, SCM_STATE_PRESENT);
}

#[test]
fn a_card_that_came_and_went_while_nobody_waited_is_reported() {
    let _daemon = DAEMON.read();
    let (lease, manager) = attached_empty_then_card_in();
    remove_and_settle(&lease);
    reported_at_once_unless_polling(&manager, SCM_STATE_ABSENT);
}

#[test]
fn status_counts_as_having_looked() {
    let _daemon = DAEMON.read();
    let (_lease, manager) = attached_empty_then_card_in();
    assert_eq!(manager.status(), Ok((SCM_STATE_PRESENT, SCM_PROTOCOL_UNDEFINED)));
    no_change_within(&manager, 300);
}

#[test]
fn a_reset_by_another_program_is_reported_by_the_first_wait_on_the_connection() {
    let _daemon = DAEMON.read();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    no_change_within(&manager, 100);
    ok(manager.reconnect());
    let other = RawConnection::connect(lease.name(), pcsc::ffi::SCARD_SHARE_SHARED).unwrap();
    other.reset_card().unwrap();
    let took = changed_to(&manager, SCM_STATE_PRESENT);
    assert!(took < Duration::from_secs(2), "reported at once: {took:?}");
    // Once: the reset is what the manager last saw now.
    no_change_within(&manager, 300);
    assert_eq!(manager.status(), Err(SCM_SCARD_W_RESET_CARD), "the connection still says so");
    ok(manager.reconnect());
    echo_ok(&manager, b"after the reset");
}

#[test]
fn a_timeout_is_e_timeout_and_writes_nothing() {
    let _daemon = DAEMON.read();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    no_change_within(&manager, 0);
    let (hr, state, took) = wait(&manager, 400);
    assert_eq!((hr, state), (SCM_SCARD_E_TIMEOUT, 0xEEEE));
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(400) + Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn cancel_from_another_thread_ends_the_wait_at_once() {
    let _daemon = DAEMON.read();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    // With no wait in progress, a cancel does nothing, and no later wait is affected.
    // SAFETY: a live token.
    ok(unsafe { scm_cancel(manager.0) });
    no_change_within(&manager, 100);
    for round in 0..3 {
        thread::scope(|scope| {
            let waiter = scope.spawn(|| wait(&manager, SCM_WAIT_INFINITE));
            thread::sleep(Duration::from_millis(if round == 0 { 300 } else { 20 }));
            let cancelled = Instant::now();
            // SAFETY: a live token.
            ok(unsafe { scm_cancel(manager.0) });
            let returned = cancelled.elapsed();
            let (hr, state, _) = waiter.join().unwrap();
            let ended = cancelled.elapsed();
            assert_eq!((hr, state), (SCM_SCARD_E_CANCELLED, 0xEEEE));
            eprintln!("cancel returned after {returned:?}, the wait had ended by {ended:?}");
            assert!(ended < ENDS_WITHIN, "{ended:?}");
        });
    }
    no_change_within(&manager, 100);
    // SAFETY: NULL is refused.
    assert_eq!(unsafe { scm_cancel(std::ptr::null_mut()) }, SCM_E_POINTER);
}

#[test]
fn release_during_a_wait_ends_it_first() {
    let _daemon = DAEMON.read();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let token = manager.0 as usize;
    thread::scope(|scope| {
        let waiter = scope.spawn(move || {
            let mut state = 0xEEEE;
            // SAFETY: a valid out-pointer; the token may be released meanwhile, which the
            // library detects.
            let hr = unsafe { scm_wait_for_change(token as *mut scm_manage, SCM_WAIT_INFINITE, &mut state) };
            (hr, state)
        });
        thread::sleep(Duration::from_millis(300));
        let released = Instant::now();
        // SAFETY: a live token, released once here (the Manager's drop then gets E_HANDLE).
        ok(unsafe { scm_release(manager.0) });
        assert_eq!(waiter.join().unwrap(), (SCM_E_HANDLE, 0xEEEE));
        assert!(released.elapsed() < ENDS_WITHIN, "{:?}", released.elapsed());
    });
    let (hr, _, _) = wait(&manager, 0);
    assert_eq!(hr, SCM_E_HANDLE);
}

#[test]
fn other_calls_on_the_manager_go_on_while_a_wait_blocks() {
    let _daemon = DAEMON.read();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    thread::scope(|scope| {
        // A limited wait: were the calls below held up by it, the test fails after it instead
        // of hanging.
        let waiter = blocked_wait(scope, &manager);
        let started = Instant::now();
        for _ in 0..20 {
            assert_eq!(manager.status(), Ok((SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1)));
            echo_ok(&manager, b"while waiting");
        }
        ok(manager.lock());
        ok(manager.unlock(SCM_LEAVE_CARD));
        let took = started.elapsed();
        assert!(!waiter.is_finished(), "the wait is still blocked");
        eprintln!("20 status + 20 transmit + lock/unlock while a wait blocked: {took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        // SAFETY: a live token.
        ok(unsafe { scm_cancel(manager.0) });
        assert_eq!(waiter.join().unwrap().0, SCM_SCARD_E_CANCELLED);
    });
}

#[test]
fn a_change_is_reported_once_while_another_thread_polls_status() {
    let _daemon = DAEMON.read();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    thread::scope(|scope| {
        let waiter = scope.spawn(|| wait(&manager, SEEN.as_millis() as u32));
        let mut polls = 0;
        let started = Instant::now();
        let mut removed = false;
        while !waiter.is_finished() {
            let _ = manager.status();
            polls += 1;
            if !removed && started.elapsed() > Duration::from_millis(300) {
                lease.card().remove();
                removed = true;
            }
            thread::sleep(Duration::from_millis(2));
        }
        let (hr, state, _) = waiter.join().unwrap();
        assert_eq!((hr, state), (SCM_S_OK, SCM_STATE_ABSENT));
        eprintln!("{polls} status calls meanwhile");
    });
    no_change_within(&manager, 300);
}

#[test]
fn two_threads_waiting_on_one_manager_both_see_the_change() {
    let _daemon = DAEMON.read();
    let lease = lease();
    let manager = Manager::attached(lease.name());
    thread::scope(|scope| {
        let first = scope.spawn(|| wait(&manager, SEEN.as_millis() as u32));
        let second = scope.spawn(|| wait(&manager, SEEN.as_millis() as u32));
        thread::sleep(Duration::from_millis(300));
        lease.insert();
        for waiter in [first, second] {
            let (hr, state, _) = waiter.join().unwrap();
            assert_eq!((hr, state), (SCM_S_OK, SCM_STATE_PRESENT));
        }
    });
}

#[test]
fn a_cancel_ends_a_wait_that_outlived_another_on_the_same_manager() {
    let _daemon = DAEMON.read();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    thread::scope(|scope| {
        let long = blocked_wait(scope, &manager);
        // A shorter wait beside it, ended by its timeout: the long one is still in progress.
        no_change_within(&manager, 300);
        assert!(!long.is_finished());
        let cancelled = Instant::now();
        // SAFETY: a live token.
        ok(unsafe { scm_cancel(manager.0) });
        assert_eq!(long.join().unwrap().0, SCM_SCARD_E_CANCELLED);
        assert!(cancelled.elapsed() < ENDS_WITHIN, "{:?}", cancelled.elapsed());
    });
}

#[test]
fn after_a_reconnect_during_a_wait_the_next_wait_compares_with_the_reconnected_card() {
    let _daemon = DAEMON.read();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    thread::scope(|scope| {
        let waiter = blocked_wait(scope, &manager);
        ok(manager.reconnect());
        lease.card().remove();
        let (hr, state, _) = waiter.join().unwrap();
        assert_eq!((hr, state), (SCM_S_OK, SCM_STATE_ABSENT));
    });
    // The manager last saw the card through the reconnect, after that wait had begun: its
    // removal is news to the next wait, which reports it at once.
    let took = changed_to(&manager, SCM_STATE_ABSENT);
    assert!(took < Duration::from_secs(2), "reported at once: {took:?}");
    no_change_within(&manager, 300);
}

#[test]
fn argument_and_state_errors() {
    let _daemon = DAEMON.read();
    let lease = lease();
    let manager = Manager::new();
    let mut state = 0;
    // SAFETY: valid or NULL pointers, as each case says.
    unsafe {
        assert_eq!(scm_wait_for_change(std::ptr::null_mut(), 0, &mut state), SCM_E_POINTER);
        assert_eq!(scm_wait_for_change(manager.0, 0, &mut state), SCM_E_NOT_ATTACHED);
        ok(manager.attach(lease.name()));
        assert_eq!(scm_wait_for_change(manager.0, 0, std::ptr::null_mut()), SCM_E_POINTER);
        ok(manager.detach());
        assert_eq!(scm_wait_for_change(manager.0, 0, &mut state), SCM_E_NOT_ATTACHED);
    }
}

#[test]
fn a_service_restart_ends_a_wait_and_the_next_one_works() {
    let _daemon = DAEMON.write().unwrap_or_else(|e| e.into_inner());
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    thread::scope(|scope| {
        let waiter = scope.spawn(|| wait(&manager, SCM_WAIT_INFINITE));
        thread::sleep(Duration::from_millis(300));
        shared().kill();
        let (hr, state, _) = waiter.join().unwrap();
        assert_eq!((hr, state), (SCM_SCARD_E_NO_SERVICE, 0xEEEE), "{}", message_of(hr));
    });
    let (hr, _, took) = wait(&manager, 5000);
    assert_eq!(hr, SCM_SCARD_E_NO_SERVICE, "at once while the service is down");
    assert!(took < Duration::from_secs(2), "{took:?}");
    shared().restart().expect("the daemon restarts");
    assert!(wait_card(lease.name(), true, SEEN), "the card is back");
    let took = changed_to(&manager, SCM_STATE_PRESENT);
    assert!(took < Duration::from_secs(2), "the connection was lost: reported at once ({took:?})");
    ok(manager.reconnect());
    echo_ok(&manager, b"after the restart");
    no_change_within(&manager, 300);
}

/// The same cases with `SCM_READER_POLL_MS` set, in a child process of this binary (the
/// variable is read once per process, and the child gets a lab of its own).
#[test]
fn the_cases_again_with_reader_polling() {
    if polling() {
        return;
    }
    let started = Instant::now();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--skip", "the_cases_again_with_reader_polling", "--skip", "a_service_restart"])
        .env("SCM_READER_POLL_MS", "200")
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("with SCM_READER_POLL_MS=200, in {:?}:\n{stdout}", started.elapsed());
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("test result: ok. 15 passed"), "every case ran: {stdout}");
}

/// A card pulled out just as a wait starts, after the wait asked the manager's connection and
/// before it looked at the reader (a test hook puts the removal there, a window of one PC/SC
/// round trip), is reported at once: the connection's card is gone, so the empty reader is a
/// change, not the state to wait from. The mutant "&& -> ||" in `prepare_wait`'s check of the
/// connection (src/wait.rs) took the empty reader for the state to wait from and timed out.
#[test]
fn a_card_pulled_as_a_wait_starts_is_reported() {
    let _daemon = DAEMON.read();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    echo_ok(&manager, b"connected");
    let (card, reader) = (lease.card().clone(), lease.name().to_string());
    // What the hook saw, checked out here: a panic inside the library's call would only come
    // back as SCM_E_UNEXPECTED.
    let (pulled, was_pulled) = std::sync::mpsc::channel();
    scardmanage::test_hooks::in_next_wait_start(move || {
        card.remove();
        let emptied = wait_card(&reader, false, SEEN);
        pulled.send((emptied, Instant::now())).unwrap();
    });
    let (hr, state, _) = wait(&manager, SEEN.as_millis() as u32);
    let (emptied, at) = was_pulled.try_recv().expect("the wait ran the hook");
    assert!(emptied, "the reader emptied");
    assert_eq!((hr, state), (SCM_S_OK, SCM_STATE_ABSENT), "{hr:#010x}: {}", message_of(hr));
    assert!(at.elapsed() < Duration::from_secs(2), "reported at once: {:?}", at.elapsed());
}

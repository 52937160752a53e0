//! Faults that leave the PC/SC service up: a card pulled in the middle of an APDU exchange,
//! a card reset by another connection while this one holds the lock, and scm_release /
//! scm_detach racing with calls in flight on the same manager.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use pcsc::ffi;
use scardmanage::*;
use scardmanage_lab::{lease_with, wait_card, Reply, VirtualCard, DEFAULT_ATR};

/// A default-applet card that vanishes (connection reset without an answer) on INS 0xEE.
fn card_that_vanishes_on_ee() -> VirtualCard {
    VirtualCard::new(DEFAULT_ATR.to_vec(), |apdu| {
        if apdu.get(1) == Some(&0xEE) {
            Reply::Vanish
        } else {
            scardmanage_lab::default_applet(apdu)
        }
    })
}

/// How long the exchange the card vanished from may take to fail: RELIABILITY.md states this
/// bound (measured: 1.0 ms at worst), with room for a loaded 2-core machine.
const PULLED_BOUND: Duration = Duration::from_millis(250);

#[test]
fn card_pulled_mid_apdu_then_put_back_is_recovered_by_reconnect() {
    let cycles = count("SCM_VANISH_CYCLES", 24, 1000);
    let readers = count("SCM_VANISH_READERS", 4, 8).min(cycles);
    let tally = Arc::new(Tally::default());
    let slowest = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..readers)
        .map(|worker| {
            let (tally, slowest) = (Arc::clone(&tally), Arc::clone(&slowest));
            let my_cycles = cycles / readers + usize::from(worker < cycles % readers);
            thread::spawn(move || {
                let lease = lease_with(card_that_vanishes_on_ee());
                lease.insert();
                assert!(wait_card(lease.name(), true, WAIT));
                let manager = Manager::attached(lease.name());
                for cycle in 0..my_cycles {
                    echo_ok(&manager, b"before");
                    let started = Instant::now();
                    let hr = manager.transmit(&[0x80, 0xEE, 0, 0]).unwrap_err();
                    let took = started.elapsed();
                    slowest.fetch_max(took.as_micros() as u64, Ordering::Relaxed);
                    assert_eq!(tally.record(Func::Transmit, hr), SCM_SCARD_E_NOT_TRANSACTED, "cycle {cycle}");
                    assert!(took < bound(PULLED_BOUND), "cycle {cycle}: the failure took {took:?}");
                    // Until the card is back: the removal, and reconnect says there is no card.
                    assert!(wait_card(lease.name(), false, WAIT), "cycle {cycle}: the reader empties");
                    let hr = manager.transmit(&echo_apdu(b"gone")).unwrap_err();
                    assert_eq!(tally.record(Func::Transmit, hr), SCM_SCARD_W_REMOVED_CARD, "cycle {cycle}");
                    let hr = tally.record(Func::Reconnect, manager.reconnect());
                    assert_eq!(hr, SCM_SCARD_E_NO_SMARTCARD, "cycle {cycle}: reconnect with the card out");
                    thread::sleep(Duration::from_millis(500));
                    lease.insert();
                    assert!(wait_card(lease.name(), true, WAIT), "cycle {cycle}: the card is back");
                    let hr = tally.record(Func::Reconnect, manager.reconnect());
                    assert_eq!(
                        hr,
                        SCM_S_OK,
                        "cycle {cycle}: reconnect after re-insertion: {}",
                        message_of(hr)
                    );
                    echo_ok(&manager, b"after");
                }
                lease.card().counters()
            })
        })
        .collect();
    let mut apdus = 0;
    for worker in workers {
        apdus += worker.join().unwrap().apdus;
    }
    tally.print(&format!("card pulled mid-APDU: {cycles} cycles over {readers} readers"));
    eprintln!("slowest failed exchange: {} us; card APDUs: {apdus}", slowest.load(Ordering::Relaxed));
    assert_eq!(tally.get(Func::Reconnect, SCM_S_OK), cycles as u64, "every cycle recovered");
    assert_eq!(apdus, 3 * cycles as u64, "before, vanish, after: nothing lost or repeated");
}

/// Each reconnect after a removal replaces the card handle; the stale one must be
/// disconnected, or it keeps the reader in use after the manager has detached.
#[test]
fn reconnects_after_removals_leave_no_handle_behind() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    for cycle in 0..5 {
        lease.card().remove();
        assert!(wait_card(lease.name(), false, WAIT), "cycle {cycle}: the reader empties");
        assert_eq!(manager.reconnect(), SCM_SCARD_E_NO_SMARTCARD, "cycle {cycle}: the card is out");
        thread::sleep(Duration::from_millis(500));
        lease.insert();
        assert!(wait_card(lease.name(), true, WAIT), "cycle {cycle}: the card is back");
        ok(manager.reconnect());
        echo_ok(&manager, b"back");
    }
    ok(manager.detach());
    let exclusive = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_EXCLUSIVE);
    assert!(
        exclusive.is_ok(),
        "the reader is still in use after the detach: {:#x}",
        exclusive.err().unwrap()
    );
}

/// Measured lock-vs-reset behaviour, as the header documents it for scm_lock / scm_unlock.
#[test]
fn reset_by_another_connection_while_locked() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let name = lease.name().to_string();
    let raw = RawConnection::connect(&name, ffi::SCARD_SHARE_SHARED).unwrap();
    ok(manager.lock());
    let resets_before = lease.card().counters().resets + lease.card().counters().power_off;
    // A connection attempt by someone else waits while we hold the lock.
    let (connect_tx, connect_rx) = std::sync::mpsc::channel();
    let connector = thread::spawn(move || {
        let started = Instant::now();
        let connected = RawConnection::connect(&name, ffi::SCARD_SHARE_SHARED).map(|c| c.handle != 0);
        connect_tx.send((connected, started.elapsed())).unwrap();
    });
    // A connection made before the lock asks for a reset: PC/SC makes it wait too.
    let (tx, rx) = std::sync::mpsc::channel();
    let other = thread::spawn(move || {
        let started = Instant::now();
        let result = raw.reset_card();
        tx.send((result, started.elapsed())).unwrap();
        raw
    });
    assert!(rx.recv_timeout(Duration::from_millis(800)).is_err(), "the reset waits for our lock");
    echo_ok(&manager, b"still ours");
    assert_eq!(manager.status(), Ok((SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1)), "no reset seen while locked");
    let counters = lease.card().counters();
    assert_eq!(counters.resets + counters.power_off, resets_before, "the card was not reset under the lock");
    ok(manager.unlock(SCM_LEAVE_CARD));
    let (result, waited) = rx.recv_timeout(WAIT).expect("the reset goes through after unlock");
    result.unwrap();
    let (connected, connect_waited) =
        connect_rx.recv_timeout(WAIT).expect("the connect goes through after unlock");
    assert_eq!(connected, Ok(true));
    eprintln!("while locked: another reset waited {waited:?}, another connect {connect_waited:?}");
    assert!(waited >= Duration::from_millis(800) && connect_waited >= Duration::from_millis(800));
    connector.join().unwrap();
    let _raw = other.join().unwrap();
    // After the reset: card calls say RESET_CARD, a lock attempt too, and reconnect clears it.
    assert_eq!(manager.transmit(&echo_apdu(b"x")), Err(SCM_SCARD_W_RESET_CARD));
    assert_eq!(manager.lock(), SCM_SCARD_W_RESET_CARD, "no lock on a card reset under us");
    assert_eq!(manager.unlock(SCM_LEAVE_CARD), SCM_SCARD_E_NOT_TRANSACTED, "the failed lock holds nothing");
    ok(manager.reconnect());
    ok(manager.lock());
    echo_ok(&manager, b"locked after reconnect");
    ok(manager.unlock(SCM_LEAVE_CARD));
}

/// A reset at the end of our own lock (scm_unlock with SCM_RESET_CARD) warns every handle
/// on the card, the resetting one included (pcsc-lite 1.9.9), and reconnect clears it.
#[test]
fn reset_at_unlock_is_seen_by_every_manager() {
    let lease = lease_with_card();
    let locker = Manager::attached(lease.name());
    let bystander = Manager::attached(lease.name());
    ok(locker.lock());
    let before = lease.card().counters();
    ok(locker.unlock(SCM_RESET_CARD));
    let after = lease.card().counters();
    assert!(after.resets + after.power_off > before.resets + before.power_off, "the card was reset");
    assert_eq!(locker.unlock(SCM_LEAVE_CARD), SCM_SCARD_E_NOT_TRANSACTED, "the lock ended");
    for manager in [&locker, &bystander] {
        assert_eq!(manager.transmit(&echo_apdu(b"x")), Err(SCM_SCARD_W_RESET_CARD));
        ok(manager.reconnect());
        echo_ok(manager, b"after reset");
    }
}

/// Threads calling on one manager while another thread releases (or detaches) it.
fn race_with(end: unsafe extern "C" fn(*mut scm_manage) -> scm_hresult, after_end: scm_hresult) {
    let lease = lease_with_card();
    let rounds = count("SCM_RACE_ROUNDS", 40, 1000);
    let tally = Arc::new(Tally::default());
    for round in 0..rounds {
        let manager = Manager::attached(lease.name());
        let token = manager.0 as usize;
        let ended = Arc::new(AtomicBool::new(false));
        let callers: Vec<_> = (0..4)
            .map(|thread_no| {
                let (ended, tally) = (Arc::clone(&ended), Arc::clone(&tally));
                thread::spawn(move || {
                    let m = token as *mut scm_manage;
                    let mut calls = 0u64;
                    loop {
                        let was_ended = ended.load(Ordering::SeqCst);
                        let (mut state, mut protocol) = (0, 0);
                        let mut rsp = [0u8; 300];
                        let mut len = rsp.len();
                        let apdu = echo_apdu(b"race");
                        let (func, hr) = match (thread_no + calls as usize) % 4 {
                            0 => (Func::Status, unsafe { scm_status(m, &mut state, &mut protocol) }),
                            1 => (Func::Transmit, unsafe {
                                scm_transmit(m, apdu.as_ptr(), apdu.len(), rsp.as_mut_ptr(), &mut len)
                            }),
                            2 => (Func::Lock, unsafe { scm_lock(m) }),
                            _ => (Func::Unlock, unsafe { scm_unlock(m, SCM_LEAVE_CARD) }),
                        };
                        tally.record(func, hr);
                        calls += 1;
                        if was_ended {
                            assert_eq!(hr, after_end, "round {round}: a call made after the end");
                            return calls;
                        }
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_micros(200 * (round as u64 % 10)));
        let hr = unsafe { end(token as *mut scm_manage) };
        ended.store(true, Ordering::SeqCst);
        assert_eq!(hr, SCM_S_OK, "round {round}");
        let calls: u64 = callers.into_iter().map(|c| c.join().unwrap()).sum();
        assert!(calls >= 4);
        // The lock, if any was held, ended with the manager's attachment: another one locks.
        let next = Manager::attached(lease.name());
        ok(within(WAIT, "locking after the race", move || next.lock()));
    }
    tally.print(&format!("racing calls, {rounds} rounds"));
    assert_eq!(lease.card().counters().resets, 0, "nothing reset the card");
}

#[test]
fn release_racing_with_calls_in_flight() {
    race_with(scm_release, SCM_E_HANDLE);
}

#[test]
fn detach_racing_with_calls_in_flight() {
    race_with(scm_detach, SCM_E_NOT_ATTACHED);
}

/// A release while another thread is blocked in scm_lock on the same manager waits for that
/// lock, then ends it.
#[test]
fn release_waits_for_a_lock_blocked_on_the_same_manager() {
    let lease = lease_with_card();
    let holder = Manager::attached(lease.name());
    let blocked = Manager::attached(lease.name());
    ok(holder.lock());
    let token = blocked.0 as usize;
    std::mem::forget(blocked);
    let locker = thread::spawn(move || unsafe { scm_lock(token as *mut scm_manage) });
    thread::sleep(Duration::from_millis(200));
    let releaser = thread::spawn(move || unsafe { scm_release(token as *mut scm_manage) });
    thread::sleep(Duration::from_millis(300));
    assert!(!releaser.is_finished(), "release waits for the blocked lock");
    ok(holder.unlock(SCM_LEAVE_CARD));
    assert_eq!(within(WAIT, "the blocked lock", move || locker.join().unwrap()), SCM_S_OK);
    assert_eq!(within(WAIT, "the release", move || releaser.join().unwrap()), SCM_S_OK);
    assert_eq!(unsafe { scm_lock(token as *mut scm_manage) }, SCM_E_HANDLE);
    ok(within(WAIT, "locking after the release", move || holder.lock()));
}

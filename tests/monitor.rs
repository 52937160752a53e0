//! The monitor against the shared lab: the initial state first, cards inserted and removed,
//! bursts with a slow consumer counted against what the lab did, cancel and release from other
//! threads, the buffer rules. Tests run in parallel on other readers of the same daemon, so each
//! test looks only at the readers it leased. Run a second time with `SCM_READER_POLL_MS` set:
//! everything here holds in that mode too.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;
mod monitor_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use monitor_support::*;
use scardmanage::*;
use scardmanage_lab::{lease, shared, wait_card};

#[test]
fn the_readers_and_cards_already_there_come_first() {
    let with_card = lease_with_card();
    let empty = lease();
    let monitor = Monitor::new();
    let initial = monitor.drain();
    for reader in shared().readers() {
        let at = initial.iter().position(|event| *event == added(&reader.name));
        assert!(at.is_some(), "{} not reported: {initial:?}", reader.name);
    }
    let ours: Vec<Event> = initial.iter().filter(|event| event.reader == with_card.name()).cloned().collect();
    assert_eq!(ours, [added(with_card.name()), inserted(with_card.name())]);
    let theirs: Vec<Event> = initial.iter().filter(|event| event.reader == empty.name()).cloned().collect();
    assert_eq!(theirs, [added(empty.name())]);
    // Nothing else was queued: the next look times out.
    let started = Instant::now();
    let readers = [with_card.name(), empty.name()];
    match monitor.next(300) {
        Err(SCM_SCARD_E_TIMEOUT) => assert!(started.elapsed() >= Duration::from_millis(300)),
        Ok(event) => assert!(!readers.contains(&event.reader.as_str()), "{event:?}"),
        Err(hr) => panic!("{hr:#010x}"),
    }
}

#[test]
fn insertion_and_removal_are_reported() {
    let reader = lease();
    let monitor = Monitor::new();
    monitor.drain();
    let name = reader.name();
    reader.insert();
    let started = Instant::now();
    assert_eq!(monitor.until(&[name], &inserted(name), WAIT), [inserted(name)]);
    eprintln!("insertion reported after {:?}", started.elapsed());
    reader.card().remove();
    assert_eq!(monitor.until(&[name], &pulled(name), WAIT), [pulled(name)]);
}

#[test]
fn a_name_that_does_not_fit_keeps_its_event() {
    let reader = lease();
    let monitor = Monitor::new();
    monitor.drain();
    let name = reader.name();
    reader.insert();
    assert!(wait_card(name, true, WAIT));
    // Wait for our event to be first, skipping other tests' readers with the size query.
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no event for {name}");
        let mut event = 0;
        let mut len = 0;
        // SAFETY: a NULL buffer with a length asks for the size.
        let hr = unsafe { scm_monitor_next(monitor.0, 1000, &mut event, std::ptr::null_mut(), &mut len) };
        if hr == SCM_SCARD_E_TIMEOUT {
            continue;
        }
        assert_eq!(hr, SCM_S_OK);
        assert_eq!(len, name.len() + 1, "the size query counts the NUL");
        let (hr, kind, _, needed) = monitor.next_raw(0, 3);
        assert_eq!(hr, SCM_SCARD_E_INSUFFICIENT_BUFFER);
        assert_eq!(kind, 0xEEEE, "no event written with a short buffer");
        assert_eq!(needed, len);
        let (hr, kind, _, exact) = monitor.next_raw(0, len);
        assert_eq!((hr, exact), (SCM_S_OK, len), "an exact buffer fits");
        assert_eq!(kind, event, "the same event as the size query announced");
        if kind == SCM_EVENT_CARD_INSERTED && len == name.len() + 1 {
            break;
        }
    }
}

/// No buffer and no length: the name is not wanted and the event is taken, so a fresh
/// monitor's initial state comes out with each of the lab's readers added exactly once (a kept
/// event would come out again and again).
#[test]
fn an_event_asked_for_without_a_name_is_taken() {
    let readers = shared().readers().len();
    let monitor = Monitor::new();
    let mut added = 0;
    for _ in 0..4 * readers {
        let mut event = 0;
        // SAFETY: no buffer and no length: the event alone.
        let hr =
            unsafe { scm_monitor_next(monitor.0, 0, &mut event, std::ptr::null_mut(), std::ptr::null_mut()) };
        if hr == SCM_SCARD_E_TIMEOUT {
            break;
        }
        assert_eq!(hr, SCM_S_OK);
        added += usize::from(event == SCM_EVENT_READER_ADDED);
    }
    assert_eq!(added, readers, "each reader added once");
}

/// 200 insert/remove cycles over 4 readers in parallel, each transition seen by pcscd before
/// the next one (checked on a raw context of the test's own), while the monitor's consumer takes
/// its time: events pile up between its calls, and every one must come out, in order.
#[test]
fn no_event_is_lost_in_bursts_with_a_slow_consumer() {
    const READERS: usize = 4;
    let cycles = count("SCM_MONITOR_CYCLES", 200, 1000);
    let leases: Vec<_> = (0..READERS).map(|_| lease()).collect();
    let names: Vec<String> = leases.iter().map(|lease| lease.name().to_string()).collect();
    let monitor = Arc::new(Monitor::new());
    monitor.drain();
    let done = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (monitor, done, names) = (Arc::clone(&monitor), Arc::clone(&done), names.clone());
        thread::spawn(move || {
            let mut seen: Vec<Vec<u32>> = vec![Vec::new(); names.len()];
            let mut calls = 0u64;
            let mut quiet_since_done = None;
            loop {
                // Deliberately slow, with long pauses: several transitions of each reader pile
                // up between two calls.
                let pause = if calls % 40 == 39 { 1500 } else { 25 };
                thread::sleep(Duration::from_millis(pause));
                calls += 1;
                match monitor.next(50) {
                    Ok(event) => {
                        if let Some(at) = names.iter().position(|name| *name == event.reader) {
                            seen[at].push(event.kind);
                        }
                        quiet_since_done = None;
                    }
                    Err(SCM_SCARD_E_TIMEOUT) if done.load(Ordering::SeqCst) => {
                        // Everything the lab did has been seen by pcscd: two quiet looks in a
                        // row mean the monitor has nothing more.
                        let since = *quiet_since_done.get_or_insert_with(Instant::now);
                        if since.elapsed() > Duration::from_millis(500) {
                            return (seen, calls);
                        }
                    }
                    Err(SCM_SCARD_E_TIMEOUT) => {}
                    Err(hr) => panic!("next: {hr:#010x}"),
                }
            }
        })
    };
    let started = Instant::now();
    let producers: Vec<_> = leases
        .into_iter()
        .enumerate()
        .map(|(index, lease)| {
            let cycles = cycles / READERS + usize::from(index < cycles % READERS);
            thread::spawn(move || {
                for _ in 0..cycles {
                    lease.insert();
                    assert!(wait_card(lease.name(), true, WAIT), "pcscd saw the card in");
                    lease.card().remove();
                    assert!(wait_card(lease.name(), false, WAIT), "pcscd saw the card out");
                }
                cycles
            })
        })
        .collect();
    let done_by_reader: Vec<usize> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    let lab_time = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let (seen, calls) = consumer.join().unwrap();
    let total: usize = seen.iter().map(Vec::len).sum();
    eprintln!(
        "{cycles} cycles ({} transitions) in {lab_time:?}; the consumer made {calls} calls and got {total} events",
        2 * cycles
    );
    for ((name, events), cycles) in names.iter().zip(&seen).zip(&done_by_reader) {
        let expected: Vec<u32> =
            [SCM_EVENT_CARD_INSERTED, SCM_EVENT_CARD_REMOVED].into_iter().cycle().take(2 * cycles).collect();
        assert_eq!(events.len(), expected.len(), "{name}: events counted against the lab's transitions");
        assert_eq!(*events, expected, "{name}: in order, alternating");
    }
}

#[test]
fn a_card_in_and_out_between_two_calls_is_both_events() {
    let reader = lease();
    let name = reader.name();
    let monitor = Monitor::new();
    monitor.drain();
    reader.insert();
    assert!(wait_card(name, true, WAIT));
    reader.card().remove();
    assert!(wait_card(name, false, WAIT));
    // The monitor did not look in between: both come out now.
    let events = monitor.until(&[name], &pulled(name), WAIT);
    assert_eq!(events, [inserted(name), pulled(name)]);
}

#[test]
fn cancel_from_another_thread_ends_a_blocked_next_at_once() {
    shared();
    let monitor = Arc::new(Monitor::new());
    monitor.drain();
    let blocked = {
        let monitor = Arc::clone(&monitor);
        thread::spawn(move || {
            loop {
                match monitor.next(SCM_WAIT_INFINITE) {
                    // Other tests' readers: keep waiting.
                    Ok(_) => continue,
                    Err(hr) => return (hr, Instant::now()),
                }
            }
        })
    };
    thread::sleep(Duration::from_millis(300));
    // A cancel ends only the call in progress: one that lands just as an event of another
    // test's reader is returned ends nothing, and is repeated.
    let mut cancelled_at;
    let mut cancel_returned;
    loop {
        cancelled_at = Instant::now();
        ok(monitor.cancel());
        cancel_returned = Instant::now();
        if blocked.is_finished() {
            break;
        }
        assert!(cancel_returned - cancelled_at < PROMPT);
        thread::sleep(Duration::from_millis(50));
    }
    let cancel_took = cancel_returned - cancelled_at;
    let (hr, ended) = blocked.join().unwrap();
    let ended_after = ended.saturating_duration_since(cancelled_at);
    eprintln!(
        "cancel returned after {cancel_took:?}; the next had ended {ended_after:?} after the cancel began"
    );
    assert_eq!(hr, SCM_SCARD_E_CANCELLED);
    assert!(ended_after < PROMPT, "{ended_after:?}");
    // A cancel ends only the calls in progress: the monitor goes on.
    ok(monitor.cancel());
    assert!(matches!(monitor.next(0), Ok(_) | Err(SCM_SCARD_E_TIMEOUT)));
}

/// A consumer that calls again at once after `SCM_SCARD_E_CANCELLED` (a cancel as a wake-up)
/// makes a new call while the cancel may still be waiting for the old one to leave: the cancel
/// must not wait for the new call too (it would wait as long as that call blocks). 50 cancels
/// in a row, each returning promptly, each ending the call in progress.
#[test]
fn a_cancel_does_not_wait_for_a_call_made_after_it() {
    shared();
    let monitor = Arc::new(Monitor::new());
    monitor.drain();
    let stop = Arc::new(AtomicBool::new(false));
    let taker = {
        let (monitor, stop) = (Arc::clone(&monitor), Arc::clone(&stop));
        thread::spawn(move || {
            let mut cancelled = 0;
            while !stop.load(Ordering::SeqCst) {
                match monitor.next(SCM_WAIT_INFINITE) {
                    // Other tests' readers.
                    Ok(_) => {}
                    Err(SCM_SCARD_E_CANCELLED) => cancelled += 1,
                    Err(hr) => panic!("next: {hr:#010x}"),
                }
            }
            cancelled
        })
    };
    thread::sleep(Duration::from_millis(300));
    let (done, cancels) = mpsc::channel();
    {
        let monitor = Arc::clone(&monitor);
        thread::spawn(move || {
            for _ in 0..50 {
                let started = Instant::now();
                ok(monitor.cancel());
                done.send(started.elapsed()).unwrap();
                thread::sleep(Duration::from_millis(10));
            }
        });
    }
    for _ in 0..50 {
        let took = cancels.recv_timeout(WAIT).expect("a cancel that does not return");
        assert!(took < PROMPT, "a cancel took {took:?}");
    }
    stop.store(true, Ordering::SeqCst);
    while !taker.is_finished() {
        ok(monitor.cancel());
        thread::sleep(Duration::from_millis(20));
    }
    let cancelled = taker.join().unwrap();
    eprintln!("{cancelled} calls cancelled");
    assert!(cancelled > 25, "{cancelled} calls cancelled");
}

#[test]
fn release_from_another_thread_ends_a_blocked_next_first() {
    shared();
    let mut monitor = Monitor::new();
    monitor.drain();
    let token = monitor.0 as usize;
    let blocked = thread::spawn(move || loop {
        let hr = next_on_token(token, SCM_WAIT_INFINITE);
        if hr != SCM_S_OK {
            return (hr, Instant::now());
        }
    });
    thread::sleep(Duration::from_millis(300));
    let released_at = Instant::now();
    ok(monitor.release());
    let release_returned = Instant::now();
    let (hr, ended) = blocked.join().unwrap();
    eprintln!("release took {:?}", release_returned - released_at);
    assert_eq!(hr, SCM_E_HANDLE);
    assert!(release_returned - released_at < PROMPT);
    assert!(ended - released_at < PROMPT, "the blocked next ended with the release");
}

#[test]
fn tokens_of_another_kind_and_bad_arguments_are_refused() {
    shared();
    let monitor = Monitor::new();
    let manager = Manager::new();
    let mut event = 0;
    let mut len = 16;
    let mut name = [0 as std::ffi::c_char; 16];
    // SAFETY: every pointer is valid or NULL; tokens are checked by the library.
    unsafe {
        assert_eq!(
            scm_monitor_next(manager.0.cast(), 0, &mut event, name.as_mut_ptr(), &mut len),
            SCM_E_HANDLE
        );
        assert_eq!(scm_monitor_cancel(manager.0.cast()), SCM_E_HANDLE);
        assert_eq!(scm_monitor_release(manager.0.cast()), SCM_E_HANDLE);
        assert_eq!(scm_status(monitor.0.cast(), &mut event, &mut event), SCM_E_HANDLE);
        assert_eq!(scm_release(monitor.0.cast()), SCM_E_HANDLE);
        assert_eq!(scm_monitor_create(std::ptr::null_mut()), SCM_E_POINTER);
        assert_eq!(
            scm_monitor_next(std::ptr::null_mut(), 0, &mut event, name.as_mut_ptr(), &mut len),
            SCM_E_POINTER
        );
        assert_eq!(
            scm_monitor_next(monitor.0, 0, std::ptr::null_mut(), name.as_mut_ptr(), &mut len),
            SCM_E_POINTER
        );
        assert_eq!(
            scm_monitor_next(monitor.0, 0, &mut event, name.as_mut_ptr(), std::ptr::null_mut()),
            SCM_E_POINTER
        );
        assert_eq!(scm_monitor_cancel(std::ptr::null_mut()), SCM_E_POINTER);
        assert_eq!(scm_monitor_release(std::ptr::null_mut()), SCM_E_POINTER);
    }
    // Both still work.
    assert!(monitor.next(0).is_ok(), "the readers of the lab");
    assert_eq!(manager.status(), Err(SCM_E_NOT_ATTACHED));
    let mut gone = Monitor::new();
    let token = gone.0;
    ok(gone.release());
    // SAFETY: a dead token, refused by the library.
    unsafe {
        assert_eq!(scm_monitor_next(token, 0, &mut event, name.as_mut_ptr(), &mut len), SCM_E_HANDLE);
        assert_eq!(scm_monitor_release(token), SCM_E_HANDLE);
    }
}

/// Two threads calling `next` on one monitor take turns on it: the one whose turn it is must
/// stay cancellable when the other leaves, every time. Each card event hands the turn over.
#[test]
fn two_threads_taking_turns_stay_cancellable() {
    let reader = lease();
    let name = reader.name();
    let monitor = Arc::new(Monitor::new());
    monitor.drain();
    let stop = Arc::new(AtomicBool::new(false));
    let takers: Vec<_> = (0..2)
        .map(|_| {
            let (monitor, stop) = (Arc::clone(&monitor), Arc::clone(&stop));
            thread::spawn(move || loop {
                match monitor.next(SCM_WAIT_INFINITE) {
                    Ok(_) if !stop.load(Ordering::SeqCst) => continue,
                    Ok(_) => return SCM_SCARD_E_CANCELLED,
                    Err(hr) => return hr,
                }
            })
        })
        .collect();
    for _ in 0..20 {
        reader.insert();
        assert!(wait_card(name, true, WAIT));
        reader.card().remove();
        assert!(wait_card(name, false, WAIT));
    }
    // The last event's hand-over is over: one taker blocked in PC/SC, the other waiting its turn.
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    // A taker that got an event just before the flag may start one more call: cancel until both
    // are gone, each cancel bounded (a call blocked where no cancel reaches it holds it for ever).
    let (done, cancels) = mpsc::channel();
    let canceller = {
        let monitor = Arc::clone(&monitor);
        thread::spawn(move || {
            while !takers.iter().all(thread::JoinHandle::is_finished) {
                let started = Instant::now();
                ok(monitor.cancel());
                done.send(started.elapsed()).unwrap();
                thread::sleep(Duration::from_millis(20));
            }
            takers.into_iter().map(|taker| taker.join().unwrap()).collect::<Vec<_>>()
        })
    };
    loop {
        match cancels.recv_timeout(WAIT) {
            Ok(took) => {
                eprintln!("cancel took {took:?}");
                assert!(took < PROMPT, "a cancel took {took:?}")
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("a cancel did not return within {WAIT:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    assert_eq!(canceller.join().unwrap(), [SCM_SCARD_E_CANCELLED; 2]);
}

//! Many threads mixing every operation over shared and private managers for a bounded time,
//! and a blocked scm_lock measured against other managers' calls.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use scardmanage::*;

fn create() -> *mut scm_manage {
    let mut m = std::ptr::null_mut();
    ok(unsafe { scm_create(&mut m) });
    m
}

fn attach(m: *mut scm_manage, reader: &str) -> scm_hresult {
    let name = std::ffi::CString::new(reader).unwrap();
    unsafe { scm_attach_by_ifd(m, name.as_ptr()) }
}

/// One step of a worker: never leaves a lock held between steps, so the workload itself
/// cannot deadlock, and a hang can only be the library's.
fn step(rng: &mut Xorshift, shared: &[AtomicUsize], readers: &[String], tally: &Tally) {
    let reader = &readers[rng.below(readers.len())];
    let slot = &shared[rng.below(shared.len())];
    let shared_m = slot.load(Ordering::SeqCst) as *mut scm_manage;
    let on_shared = rng.chance(60);
    let m = if on_shared { shared_m } else { create() };
    if !on_shared {
        tally.record(Func::Create, SCM_S_OK);
        tally.record(Func::Attach, attach(m, reader));
    }
    let (mut state, mut protocol) = (0, 0);
    let mut rsp = [0u8; 300];
    let mut len;
    let apdu = echo_apdu(b"concurrent");
    for _ in 0..1 + rng.below(4) {
        match rng.below(9) {
            0 => {
                tally.record(Func::Lock, unsafe { scm_lock(m) });
                len = rsp.len();
                tally.record(Func::Transmit, unsafe {
                    scm_transmit(m, apdu.as_ptr(), apdu.len(), rsp.as_mut_ptr(), &mut len)
                });
                tally.record(Func::Unlock, unsafe { scm_unlock(m, SCM_LEAVE_CARD) });
            }
            1 | 2 => {
                len = rsp.len();
                let hr = tally.record(Func::Transmit, unsafe {
                    scm_transmit(m, apdu.as_ptr(), apdu.len(), rsp.as_mut_ptr(), &mut len)
                });
                if hr == SCM_S_OK {
                    assert_eq!(&rsp[..len], b"concurrent\x90\x00");
                }
            }
            3 => _ = tally.record(Func::Status, unsafe { scm_status(m, &mut state, &mut protocol) }),
            4 => {
                len = rsp.len();
                tally.record(Func::ListReaders, unsafe {
                    scm_list_readers(rsp.as_mut_ptr().cast(), &mut len)
                });
            }
            5 => _ = tally.record(Func::Reconnect, unsafe { scm_reconnect(m) }),
            6 => {
                len = rsp.len();
                tally.record(Func::GetAtr, unsafe { scm_get_atr(m, rsp.as_mut_ptr(), &mut len) });
            }
            7 => {
                tally.record(Func::Detach, unsafe { scm_detach(m) });
                tally.record(Func::Attach, attach(m, reader));
            }
            _ => {
                let mut handle = 0;
                tally.record(Func::GetHandle, unsafe { scm_get_handle(m, &mut handle) });
            }
        }
    }
    if !on_shared {
        tally.record(Func::Release, unsafe { scm_release(m) });
    } else if rng.chance(3) {
        // Replace a shared manager: threads still holding the old token get SCM_E_HANDLE.
        let fresh = create();
        tally.record(Func::Attach, attach(fresh, reader));
        let old = slot.swap(fresh as usize, Ordering::SeqCst) as *mut scm_manage;
        tally.record(Func::Release, unsafe { scm_release(old) });
    }
}

#[test]
fn threads_mixing_every_operation_end_within_their_bound() {
    let threads = count("SCM_THREADS", 10, 16);
    let seconds = count("SCM_CONCURRENCY_SECS", 6, 120) as u64;
    let leases: Vec<_> = (0..3).map(|_| lease_with_card()).collect();
    let empty = scardmanage_lab::lease();
    let mut readers: Vec<String> = leases.iter().map(|l| l.name().to_string()).collect();
    readers.push(empty.name().to_string());
    let shared: Arc<Vec<AtomicUsize>> = Arc::new(
        (0..4)
            .map(|i| {
                let m = create();
                ok(attach(m, &readers[i % 3]));
                AtomicUsize::new(m as usize)
            })
            .collect(),
    );
    let readers = Arc::new(readers);
    let tally = Arc::new(Tally::default());
    let seed = Xorshift::from_env("concurrency").next();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|n| {
            let (shared, readers, tally) = (Arc::clone(&shared), Arc::clone(&readers), Arc::clone(&tally));
            thread::spawn(move || {
                let mut rng = Xorshift(seed ^ (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                let mut steps = 0u64;
                while Instant::now() < deadline {
                    step(&mut rng, &shared, &readers, &tally);
                    steps += 1;
                }
                steps
            })
        })
        .collect();
    let steps = within(Duration::from_secs(seconds + 30), "the concurrent workload", move || {
        workers.into_iter().map(|w| w.join().unwrap()).sum::<u64>()
    });
    tally.print(&format!("{threads} threads for {seconds} s: {steps} steps"));
    for m in shared.iter() {
        ok(unsafe { scm_release(m.load(Ordering::SeqCst) as *mut scm_manage) });
    }
    for func in [
        Func::Transmit,
        Func::Lock,
        Func::Unlock,
        Func::Status,
        Func::ListReaders,
        Func::Reconnect,
        Func::Detach,
        Func::Release,
    ] {
        assert!(tally.get(func, SCM_S_OK) > 0, "{func:?} never succeeded");
    }
    assert!(tally.get(Func::Attach, SCM_S_OK) > 0);
    let apdus: u64 = leases.iter().map(|l| l.card().counters().apdus).sum();
    assert!(apdus >= tally.get(Func::Transmit, SCM_S_OK), "the cards saw the work");
    assert_eq!(tally.get(Func::Release, SCM_E_HANDLE), 0, "each manager released once");
}

/// Latencies of calls on a manager of another reader, in microseconds, sorted.
fn latencies(manager: &Manager, calls: usize) -> Vec<u128> {
    let mut took: Vec<u128> = (0..calls)
        .map(|i| {
            let started = Instant::now();
            if i % 2 == 0 {
                echo_ok(manager, b"iso");
            } else {
                manager.status().unwrap();
            }
            started.elapsed().as_micros()
        })
        .collect();
    took.sort_unstable();
    took
}

#[test]
fn a_blocked_lock_stalls_no_other_manager() {
    let contended = lease_with_card();
    let other_reader = lease_with_card();
    let holder = Manager::attached(contended.name());
    let blocked = Arc::new(Manager::attached(contended.name()));
    let bystander = Manager::attached(other_reader.name());
    let calls = count("SCM_ISOLATION_CALLS", 400, 10_000);
    let baseline = latencies(&bystander, calls);
    ok(holder.lock());
    let waiter = {
        let blocked = Arc::clone(&blocked);
        thread::spawn(move || blocked.lock())
    };
    thread::sleep(Duration::from_millis(100));
    let during = latencies(&bystander, calls);
    // Managers created, attached and released meanwhile, and list_readers, are unaffected too.
    let started = Instant::now();
    for _ in 0..20 {
        let fresh = Manager::attached(other_reader.name());
        echo_ok(&fresh, b"fresh");
        list_readers().unwrap();
    }
    let churn = started.elapsed();
    assert!(!waiter.is_finished(), "the lock was still blocked throughout");
    ok(holder.unlock(SCM_LEAVE_CARD));
    assert_eq!(within(WAIT, "the blocked lock", move || waiter.join().unwrap()), SCM_S_OK);
    let pct = |v: &[u128], p: usize| v[(v.len() - 1) * p / 100];
    eprintln!(
        "other manager's calls (us): baseline p50 {} p99 {} max {}; with a lock blocked p50 {} p99 {} max {}; 20 attach+echo+list {churn:?}",
        pct(&baseline, 50), pct(&baseline, 99), pct(&baseline, 100),
        pct(&during, 50), pct(&during, 99), pct(&during, 100)
    );
    assert!(pct(&during, 99) < 50_000, "p99 with a lock blocked: {} us", pct(&during, 99));
    assert!(pct(&during, 50) < 10 * pct(&baseline, 50).max(200), "median stayed near the baseline");
    assert!(churn < Duration::from_secs(5));
}

//! The defects of issue 15, each as a user would meet it: a RESET detach stalling the process,
//! a borrowed EXCLUSIVE handle reconnected SHARED, `scm_transmit` from a thread-exit destructor,
//! a caught panic printing on the host's stderr, `scm_status` with one variable for both
//! outputs, what the header says of borrowed handles, unavailable readers and a lost answer,
//! and pcsc-lite's client bookkeeping racing across threads. RELIABILITY.md ("Defects found by
//! review") has the figures.
//!
//! One test restarts pcscd; it takes the write side of `SERVICE`, every other test the read
//! side, so that no test here sees the restart.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::cell::RefCell;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, RwLock, RwLockReadGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use pcsc::ffi;
use scardmanage::*;
use scardmanage_lab::{shared, wait_card};

static SERVICE: RwLock<()> = RwLock::new(());

fn service_up() -> RwLockReadGuard<'static, ()> {
    SERVICE.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` on a thread of its own and returns its result with how long it took, or `None`
/// after `bound` (the thread is then left to finish on its own).
fn timed<T: Send + 'static>(
    bound: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<(T, Duration)> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let started = Instant::now();
        let value = f();
        let _ = tx.send((value, started.elapsed()));
    });
    rx.recv_timeout(bound).ok()
}

/// The process-wide calls a detach waiting for a card's lock must not hold up: listing readers,
/// attaching and detaching another manager, releasing one.
fn process_wide_calls(other_reader: String) {
    list_readers().expect("readers listed");
    let other = Manager::attached(&other_reader);
    ok(other.detach());
    drop(other);
}

/// Issue 15, item 1. Manager A holds the card's lock; B detaches with RESET, which pcscd makes
/// wait for A's unlock. Meanwhile the process's other calls must go on: before the fix, B held
/// the process-wide records lock through its wait, so A's own thread calling
/// `scm_list_readers` before unlocking deadlocked.
#[test]
fn a_reset_detach_waiting_for_a_lock_stalls_no_other_call() {
    let _service = service_up();
    let lease = lease_with_card();
    let other = lease_with_card();
    let holder = Manager::attached(lease.name());
    let detaching = Manager::attached(lease.name());
    ok(holder.lock());
    let before = lease.card().counters();

    let token = detaching.0 as usize;
    let (done_tx, done_rx) = mpsc::channel();
    let detacher = thread::spawn(move || {
        let started = Instant::now();
        let hr = unsafe { scm_detach_ex(token as *mut scm_manage, SCM_RESET_CARD) };
        done_tx.send((hr, started.elapsed())).unwrap();
    });
    thread::sleep(Duration::from_millis(500));
    assert!(done_rx.try_recv().is_err(), "the RESET detach waits for the holder's unlock");

    let other_reader = other.name().to_string();
    let calls = timed(Duration::from_secs(3), move || process_wide_calls(other_reader));
    // Whatever happened, let the detach finish before asserting.
    ok(holder.unlock(SCM_LEAVE_CARD));
    let (hr, waited) = done_rx.recv_timeout(WAIT).expect("the detach ends once the lock ends");
    detacher.join().unwrap();
    let elapsed = calls.map(|((), elapsed)| elapsed);
    eprintln!("list readers + attach/detach/release elsewhere during the RESET detach: {elapsed:?}");
    eprintln!("RESET detach: {hr:#010x} after {waited:?}");
    let elapsed = elapsed.expect("list readers, attach, detach and release went on (3 s bound)");
    assert!(elapsed < Duration::from_secs(1), "they took {elapsed:?}");
    ok(hr);
    thread::sleep(Duration::from_millis(100));
    let after = lease.card().counters();
    assert!(after.resets + after.power_off > before.resets + before.power_off, "{before:?} -> {after:?}");
}

/// Pulls the lease's card and puts it back, each seen by pcscd.
fn pull_and_put_back(lease: &scardmanage_lab::ReaderLease) {
    lease.card().remove();
    assert!(wait_card(lease.name(), false, WAIT));
    // See `wait_card`: the daemon's poller must see the reader empty before the card returns.
    thread::sleep(Duration::from_millis(600));
    lease.insert();
    assert!(wait_card(lease.name(), true, WAIT));
}

/// Issue 15, item 2: a borrowed EXCLUSIVE handle whose card was pulled and put back cannot name
/// its reader, so its share mode cannot be learnt from it; the reconnect must never make it
/// SHARED. Alone in the process (the write side of `SERVICE`), so that no other test's
/// connection changes what the readers' states say.
#[test]
fn a_borrowed_exclusive_handle_stays_exclusive_after_the_card_comes_back() {
    let lease = lease_with_card();
    let bystander_lease = lease_with_card();
    let _alone = SERVICE.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    let owner = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_EXCLUSIVE).unwrap();
    pull_and_put_back(&lease);

    // The only reader in use is held exclusively: the handle is the exclusive one.
    let manager = Manager::borrowing(&owner);
    ok(manager.reconnect());
    echo_ok(&manager, b"exclusive");
    assert_eq!(another_program_connects(lease.name()), Err(SCM_SCARD_E_SHARING_VIOLATION));
    drop(manager);

    // With another reader in use, shared, the states cannot tell: the handle is left as it is,
    // and the owner's own reconnect settles it.
    let bystander = RawConnection::connect(bystander_lease.name(), ffi::SCARD_SHARE_SHARED).unwrap();
    pull_and_put_back(&lease);
    let manager = Manager::borrowing(&owner);
    assert_eq!(manager.reconnect(), SCM_SCARD_W_REMOVED_CARD);
    assert_eq!(another_program_connects(lease.name()), Err(SCM_SCARD_E_SHARING_VIOLATION));
    assert_eq!(owner.reconnect(ffi::SCARD_SHARE_EXCLUSIVE, ffi::SCARD_LEAVE_CARD), Ok(()));
    ok(manager.reconnect());
    echo_ok(&manager, b"still exclusive");
    assert_eq!(another_program_connects(lease.name()), Err(SCM_SCARD_E_SHARING_VIOLATION));
    drop((manager, owner, bystander));

    // A shared handle is reconnected shared: another program connects.
    let owner = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_SHARED).unwrap();
    pull_and_put_back(&lease);
    let manager = Manager::borrowing(&owner);
    ok(manager.reconnect());
    assert_eq!(another_program_connects(lease.name()), Ok(()));
}

/// Issue 15, item 2, after a service restart: the share-mode probe used a spare context that
/// outlived its daemon, failed, answered "shared", and put the dead context back.
#[test]
fn a_borrowed_exclusive_handle_stays_exclusive_after_a_service_restart() {
    let lease = lease_with_card();
    let _restart = SERVICE.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Leave spare contexts behind, to outlive the daemon.
    let managers: Vec<Manager> = (0..2).map(|_| Manager::attached(lease.name())).collect();
    drop(managers);

    shared().kill();
    shared().restart().expect("the daemon restarts");
    assert!(wait_card(lease.name(), true, WAIT), "the card is back in its reader");

    let owner = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_EXCLUSIVE).unwrap();
    let manager = Manager::borrowing(&owner);
    ok(manager.reconnect());
    echo_ok(&manager, b"after the restart");
    assert_eq!(
        another_program_connects(lease.name()),
        Err(SCM_SCARD_E_SHARING_VIOLATION),
        "the caller's handle is still exclusive"
    );
}

/// Issue 15, item 6: the header said a borrowed handle is reconnected "(SHARED, T0|T1, LEAVE)";
/// the code keeps its share mode. Both the text and the behaviour are checked.
#[test]
fn the_header_says_what_a_borrowed_reconnect_does() {
    let _service = service_up();
    let reconnect = header_doc("scm_reconnect");
    assert!(!reconnect.contains("SHARED, T0|T1"), "{reconnect}");
    assert!(reconnect.contains("keeping its share mode"), "{reconnect}");
    let attach = header_doc("scm_attach_by_handle");
    assert!(attach.contains("never loses its exclusivity"), "{attach}");

    let lease = lease_with_card();
    let owner = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_EXCLUSIVE).unwrap();
    let manager = Manager::borrowing(&owner);
    ok(manager.reconnect());
    assert_eq!(another_program_connects(lease.name()), Err(SCM_SCARD_E_SHARING_VIOLATION));
}

/// What another program's SHARED connect gets (it is dropped at once), within `WAIT`.
fn another_program_connects(reader: &str) -> Result<(), scm_hresult> {
    let reader = reader.to_string();
    let outcome = timed(WAIT, move || RawConnection::connect(&reader, ffi::SCARD_SHARE_SHARED).map(|_| ()));
    outcome.expect("another program's connect returned").0
}

/// The comment block the committed header puts above a function's declaration.
fn header_doc(function: &str) -> String {
    let header = include_str!("../include/scardmanage.h");
    let declaration = header.find(&format!(" {function}(")).unwrap_or_else(|| panic!("{function} declared"));
    let before = &header[..declaration];
    let lines: Vec<&str> = before.lines().collect();
    let doc: Vec<&str> =
        lines[..lines.len() - 1].iter().rev().take_while(|line| line.starts_with("//")).copied().collect();
    doc.into_iter().rev().collect::<Vec<_>>().join("\n")
}

struct ExitProbe {
    token: usize,
    result: mpsc::Sender<Result<Vec<u8>, scm_hresult>>,
}

impl Drop for ExitProbe {
    fn drop(&mut self) {
        // A response buffer smaller than SCM_MAX_APDU_SIZE: the answer goes through the
        // library's scratch (once per-thread, and then already gone here).
        let mut response = [0u8; 64];
        let mut len = response.len();
        let command = echo_apdu(b"at exit");
        let hr = unsafe {
            scm_transmit(
                self.token as *mut scm_manage,
                command.as_ptr(),
                command.len(),
                response.as_mut_ptr(),
                &mut len,
            )
        };
        let _ = self.result.send(match hr {
            SCM_S_OK => Ok(response[..len].to_vec()),
            hr => Err(hr),
        });
    }
}

thread_local! {
    static AT_EXIT: RefCell<Option<ExitProbe>> = const { RefCell::new(None) };
}

/// Issue 15, item 3: `scm_transmit` from a thread-exit destructor (here a Rust thread-local's, as
/// a C++ `thread_local`'s; a pthread key's runs later, see
/// `transmits_from_pthread_key_destructors_free_their_memory`), after a transmit in the thread's
/// body and with none before (when the library's scratch was a thread-local, these were the
/// cases of a scratch torn down already and of one set up too late).
#[test]
fn transmit_works_from_a_thread_exit_destructor() {
    let _service = service_up();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let token = manager.0 as usize;
    for transmit_in_body in [true, false] {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            AT_EXIT.with_borrow_mut(|probe| *probe = Some(ExitProbe { token, result: tx }));
            if transmit_in_body {
                // Thread-locals set up by this call would be torn down before the probe's
                // destructor runs (last set up, first destroyed).
                let mut response = [0u8; 64];
                let mut len = response.len();
                let command = echo_apdu(b"body");
                ok(unsafe {
                    scm_transmit(
                        token as *mut scm_manage,
                        command.as_ptr(),
                        command.len(),
                        response.as_mut_ptr(),
                        &mut len,
                    )
                });
            }
        })
        .join()
        .unwrap();
        let answer = rx.recv_timeout(WAIT).expect("the destructor ran");
        assert_eq!(
            answer,
            Ok([b"at exit".as_slice(), &[0x90, 0x00]].concat()),
            "transmit in the body: {transmit_in_body}"
        );
    }
}

/// Review of issue 15, item 3: a `pthread` key destructor runs after the thread's thread-locals
/// are torn down. A thread whose first small-buffer transmit came from there registered a
/// thread-local scratch for destruction too late, and its 64 KiB were never freed. In a child
/// process, so that no other test's memory moves the figure.
#[test]
fn transmits_from_pthread_key_destructors_free_their_memory() {
    let _service = service_up();
    let lease = lease_with_card();
    let output = child("key-destructors", lease.name(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{}", stderr.lines().filter(|line| line.starts_with("key:")).collect::<Vec<_>>().join("\n"));
    assert!(output.status.success(), "the child ended with {:?}\n{stderr}", output.status);
}

static KEY_TOKEN: AtomicUsize = AtomicUsize::new(0);
static KEY_ANSWERS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn transmit_from_key_destructor(_: *mut std::ffi::c_void) {
    let mut response = [0u8; 64];
    let mut len = response.len();
    let command = echo_apdu(b"key");
    let hr = unsafe {
        scm_transmit(
            KEY_TOKEN.load(Ordering::SeqCst) as *mut scm_manage,
            command.as_ptr(),
            command.len(),
            response.as_mut_ptr(),
            &mut len,
        )
    };
    if hr == SCM_S_OK && response[..len] == *b"key\x90\x00" {
        KEY_ANSWERS.fetch_add(1, Ordering::SeqCst);
    }
}

fn resident_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn key_destructors_child(reader: &str) {
    let manager = Manager::attached(reader);
    KEY_TOKEN.store(manager.0 as usize, Ordering::SeqCst);
    let mut key = 0;
    assert_eq!(unsafe { libc::pthread_key_create(&mut key, Some(transmit_from_key_destructor)) }, 0);
    let threads = |count: usize| {
        for _ in 0..count {
            thread::spawn(move || assert_eq!(unsafe { libc::pthread_setspecific(key, 1 as *const _) }, 0))
                .join()
                .unwrap();
        }
    };
    // Warm up: thread stacks and the allocator's arenas reach their steady size.
    threads(20);
    let before = resident_kib();
    threads(300);
    let grown = resident_kib().saturating_sub(before);
    eprintln!("key: 300 threads, each transmitting once from a pthread key destructor: resident memory grew {grown} KiB");
    assert_eq!(KEY_ANSWERS.load(Ordering::SeqCst), 320, "every transmit got the card's answer");
    // 64 KiB a thread would be 19,200 KiB.
    assert!(grown < 4096, "{grown} KiB kept by 300 ended threads");
}

/// A mode of this test binary run as a child process (`child`), where the parent looks at how
/// it ended and what it printed.
const CHILD_MODE: &str = "SCM_CORE_DEFECTS_CHILD";

fn child(mode: &str, reader: &str, extra_env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child_process", "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE, mode)
        .env("SCM_CORE_DEFECTS_READER", reader)
        .env_remove("RUST_BACKTRACE");
    for (name, value) in extra_env {
        command.env(name, value);
    }
    command.output().expect("the child runs")
}

/// The children's entry point; does nothing in an ordinary run.
#[test]
fn child_process() {
    match std::env::var(CHILD_MODE).as_deref() {
        Ok("panic") => caught_panic_child(false),
        Ok("panic-with-host-hook") => caught_panic_child(true),
        Ok("race") => bookkeeping_race_child(&std::env::var("SCM_CORE_DEFECTS_READER").unwrap()),
        Ok("key-destructors") => key_destructors_child(&std::env::var("SCM_CORE_DEFECTS_READER").unwrap()),
        _ => {}
    }
}

fn caught_panic_child(host_hook: bool) {
    if host_hook {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("host hook saw: {}", info.payload().downcast_ref::<&str>().unwrap_or(&"?"))
        }));
    }
    let manager = Manager::new();
    for _ in 0..3 {
        scardmanage::test_hooks::panic_in_next_manager_call();
        assert_eq!(manager.reconnect(), SCM_E_UNEXPECTED);
    }
    assert_eq!(manager.reconnect(), SCM_E_NOT_ATTACHED, "the manager still works");
    // The host's own panics still reach its hook (or the default one).
    let _ = std::panic::catch_unwind(|| panic!("the host's own panic"));
    eprintln!("child done");
}

/// Issue 15, item 3: a panic the library catches prints nothing on the host's stderr, and the
/// host's own panics are reported as before.
#[test]
fn a_caught_panic_prints_nothing() {
    for (mode, host_line) in
        [("panic", "panicked"), ("panic-with-host-hook", "host hook saw: the host's own panic")]
    {
        let output = child(mode, "", &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{mode}: {:?}\n{stderr}", output.status);
        assert!(stderr.contains("child done"), "{mode}: {stderr}");
        assert!(!stderr.contains("forced panic"), "{mode}: the library's panic printed:\n{stderr}");
        assert!(stderr.contains("the host's own panic") && stderr.contains(host_line), "{mode}: {stderr}");
    }
}

/// Issue 15, item 4: one variable for both outputs of `scm_status` is allowed; it ends with the
/// protocol.
#[test]
fn status_may_write_both_outputs_to_one_variable() {
    let _service = service_up();
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let (_, protocol) = manager.status().unwrap();
    let mut both = 0xEEEE;
    ok(unsafe { scm_status(manager.0, &mut both, &mut both) });
    assert_eq!(both, protocol);
    assert!(header_doc("scm_status").contains("may point to one variable"));
}

/// Issue 15, item 7: what the header says of `scm_status` on an unavailable reader
/// (`SCM_STATE_UNKNOWN`, see `reader_states_become_com_states` in src/scard.rs for the mapping)
/// and of a transmit that fails with the large response buffer PC/SC writes into directly.
/// With pcsc-lite a failed transmit (card gone) writes neither the buffer nor its length.
#[test]
fn the_header_says_what_status_and_a_failed_transmit_leave() {
    let _service = service_up();
    assert!(header_doc("scm_status").contains("`SCM_STATE_UNKNOWN` when PC/SC reports the reader neither"));
    let transmit = header_doc("scm_transmit");
    assert!(transmit.contains("the buffer's contents are unspecified"), "{transmit}");

    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    lease.card().remove();
    assert!(wait_card(lease.name(), false, WAIT));
    let mut response = vec![0xA5u8; SCM_MAX_APDU_SIZE];
    let mut len = response.len();
    let command = echo_apdu(b"lost");
    let hr =
        unsafe { scm_transmit(manager.0, command.as_ptr(), command.len(), response.as_mut_ptr(), &mut len) };
    assert_ne!(hr, SCM_S_OK);
    assert_eq!(len, SCM_MAX_APDU_SIZE, "the length is written only on success");
    assert!(response.iter().all(|&b| b == 0xA5), "pcsc-lite wrote nothing");
}

/// Issue 15, items 1 and 7: pcsc-lite's client keeps per-context lists of card handles, walked
/// by every disconnect across all contexts. Threads attach (connect) and detach (disconnect),
/// with more managers than spare contexts so that contexts are established and released too,
/// while others list readers (a context established and released per call) and reconnect.
///
/// Two checks, in a child process where every PC/SC call is the library's: it must not crash
/// (glibc's MALLOC_PERTURB_ makes a record freed under a walk hold garbage pointers, so that a
/// race crashes rather than passing unseen), and `bookkeeping_watch` must see no establish,
/// release or disconnect overlap another, which is what the library's records lock promises
/// and what pcsc-lite needs. The crash alone is rare (none in 70 s without the lock); the
/// overlap count fails at once without the lock.
#[test]
fn pcsc_lite_bookkeeping_survives_racing_attach_detach_and_release() {
    let _service = service_up();
    let lease = lease_with_card();
    let seconds = count("SCM_BOOKKEEPING_SECS", 6, 120).to_string();
    let started = Instant::now();
    let output = child(
        "race",
        lease.name(),
        &[("MALLOC_PERTURB_", "165"), ("SCM_BOOKKEEPING_SECS", seconds.as_str())],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Vec<_> = stderr.lines().filter(|line| line.starts_with("race:")).collect();
    eprintln!("{}", report.join("\n"));
    assert!(
        output.status.success(),
        "the racing child ended with {:?} after {:?}",
        output.status,
        started.elapsed()
    );
    // A child that ran no test (a filter that no longer matches) also ends well: the race's own
    // report says it ran.
    assert_eq!(report.len(), 1, "the child did not report the race: {stderr}");
}

fn bookkeeping_race_child(reader: &str) {
    let seconds = count("SCM_BOOKKEEPING_SECS", 6, 120) as u64;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let attaches = Arc::new(AtomicU64::new(0));
    let lists = Arc::new(AtomicU64::new(0));
    let reconnects = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    // Three attach/detach threads of three managers each: nine contexts, more than the four
    // kept spare, so some are released and established on the way.
    for _ in 0..3 {
        let (reader, stop, attaches) = (reader.to_string(), stop.clone(), attaches.clone());
        threads.push(thread::spawn(move || {
            let managers: Vec<Manager> = (0..3).map(|_| Manager::new()).collect();
            while !stop.load(Ordering::Relaxed) {
                for manager in &managers {
                    ok(manager.attach(&reader));
                }
                for manager in &managers {
                    ok(manager.detach());
                }
                attaches.fetch_add(3, Ordering::Relaxed);
            }
        }));
    }
    for _ in 0..2 {
        let (stop, lists) = (stop.clone(), lists.clone());
        threads.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                list_readers().expect("readers listed");
                lists.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    {
        let (reader, stop, reconnects) = (reader.to_string(), stop.clone(), reconnects.clone());
        threads.push(thread::spawn(move || {
            let manager = Manager::attached(&reader);
            while !stop.load(Ordering::Relaxed) {
                ok(manager.reconnect());
                reconnects.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    let (calls, overlaps) = bookkeeping_watch::counts();
    eprintln!(
        "race: {seconds} s: {} attach+detach pairs, {} reader lists (context established and released), {} reconnects; \
         {calls} establish/release/disconnect calls, {overlaps} overlapping another",
        attaches.load(Ordering::Relaxed),
        lists.load(Ordering::Relaxed),
        reconnects.load(Ordering::Relaxed)
    );
    // No overlap among no calls would prove nothing: each attach+detach pair disconnects once and
    // each listing establishes and releases a context, all through the stand-ins.
    let (pairs, listed) = (attaches.load(Ordering::Relaxed), lists.load(Ordering::Relaxed));
    assert!(pairs > 0 && listed > 0, "the race ran: {pairs} attach+detach pairs, {listed} lists");
    assert!(calls >= pairs + 2 * listed, "the stand-ins saw {calls} calls: not interposed");
    assert_eq!(overlaps, 0, "pcsc-lite's bookkeeping calls ran concurrently");
}

/// Stand-ins for the three PC/SC calls that add or remove pcsc-lite's client records: each
/// forwards to libpcsclite's own (found with `dlsym(RTLD_NEXT)`), counting the calls and those
/// that start while another of the three is still running. Defined in this test executable, they
/// take the place of libpcsclite's for every caller in it, the library included.
mod bookkeeping_watch {
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    use pcsc::ffi::{DWORD, LONG, SCARDCONTEXT, SCARDHANDLE};

    static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
    static CALLS: AtomicU64 = AtomicU64::new(0);
    static OVERLAPS: AtomicU64 = AtomicU64::new(0);

    pub fn counts() -> (u64, u64) {
        (CALLS.load(Ordering::SeqCst), OVERLAPS.load(Ordering::SeqCst))
    }

    struct InFlight;

    impl InFlight {
        fn enter() -> InFlight {
            CALLS.fetch_add(1, Ordering::SeqCst);
            if IN_FLIGHT.fetch_add(1, Ordering::SeqCst) != 0 {
                OVERLAPS.fetch_add(1, Ordering::SeqCst);
            }
            InFlight
        }
    }

    impl Drop for InFlight {
        fn drop(&mut self) {
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// libpcsclite's definition of `name` (NUL-terminated).
    fn real(cache: &OnceLock<usize>, name: &[u8]) -> usize {
        *cache.get_or_init(|| {
            // SAFETY: a NUL-terminated symbol name; RTLD_NEXT looks past this executable.
            let symbol = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
            assert!(!symbol.is_null(), "libpcsclite defines {:?}", String::from_utf8_lossy(name));
            symbol as usize
        })
    }

    #[no_mangle]
    pub unsafe extern "C" fn SCardEstablishContext(
        scope: DWORD,
        reserved1: *const c_void,
        reserved2: *const c_void,
        context: *mut SCARDCONTEXT,
    ) -> LONG {
        static REAL: OnceLock<usize> = OnceLock::new();
        type Real = unsafe extern "C" fn(DWORD, *const c_void, *const c_void, *mut SCARDCONTEXT) -> LONG;
        // SAFETY: the symbol is libpcsclite's function of this very signature.
        let real: Real = unsafe { std::mem::transmute(real(&REAL, b"SCardEstablishContext\0")) };
        let _in_flight = InFlight::enter();
        // SAFETY: forwarded as received.
        unsafe { real(scope, reserved1, reserved2, context) }
    }

    #[no_mangle]
    pub unsafe extern "C" fn SCardReleaseContext(context: SCARDCONTEXT) -> LONG {
        static REAL: OnceLock<usize> = OnceLock::new();
        type Real = unsafe extern "C" fn(SCARDCONTEXT) -> LONG;
        // SAFETY: the symbol is libpcsclite's function of this very signature.
        let real: Real = unsafe { std::mem::transmute(real(&REAL, b"SCardReleaseContext\0")) };
        let _in_flight = InFlight::enter();
        // SAFETY: forwarded as received.
        unsafe { real(context) }
    }

    #[no_mangle]
    pub unsafe extern "C" fn SCardDisconnect(card: SCARDHANDLE, disposition: DWORD) -> LONG {
        static REAL: OnceLock<usize> = OnceLock::new();
        type Real = unsafe extern "C" fn(SCARDHANDLE, DWORD) -> LONG;
        // SAFETY: the symbol is libpcsclite's function of this very signature.
        let real: Real = unsafe { std::mem::transmute(real(&REAL, b"SCardDisconnect\0")) };
        let _in_flight = InFlight::enter();
        // SAFETY: forwarded as received.
        unsafe { real(card, disposition) }
    }
}

/// Review of issue 15, item 2: pcsc-lite reports a reader in use only while it holds a card, so
/// a SHARED handle whose card is out leaves no trace in the readers' states; with another reader
/// held exclusively they look as if the handle were the exclusive one. The reconnect then fails
/// on the missing card and changes nothing; once the card is back, the handle's reader is in use
/// and not exclusive, so nothing is concluded, and the handle stays shared throughout.
#[test]
fn a_borrowed_shared_handle_whose_card_is_out_is_not_made_exclusive() {
    assert!(header_doc("scm_attach_by_handle").contains("a SHARED handle whose card is out looks"));
    let lease = lease_with_card();
    let exclusive_lease = lease_with_card();
    let _alone = SERVICE.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    let owner = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_SHARED).unwrap();
    let exclusive = RawConnection::connect(exclusive_lease.name(), ffi::SCARD_SHARE_EXCLUSIVE).unwrap();
    lease.card().remove();
    assert!(wait_card(lease.name(), false, WAIT));
    let manager = Manager::borrowing(&owner);
    assert_eq!(manager.reconnect(), SCM_SCARD_E_NO_SMARTCARD);
    // See `wait_card`: the daemon's poller must see the reader empty before the card returns.
    thread::sleep(Duration::from_millis(600));
    lease.insert();
    assert!(wait_card(lease.name(), true, WAIT));
    assert_eq!(manager.reconnect(), SCM_SCARD_W_REMOVED_CARD);
    assert_eq!(another_program_connects(lease.name()), Ok(()), "the caller's handle is still shared");
    drop(exclusive);
}

/// Review of issue 15, item 2: the share mode learnt at attach time goes stale when the owner
/// reconnects its handle in another mode; `scm_reconnect` must follow the handle as it is now.
#[test]
fn a_borrowed_handle_made_exclusive_by_its_owner_after_attach_stays_exclusive() {
    let _service = service_up();
    let lease = lease_with_card();
    let owner = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_SHARED).unwrap();
    let manager = Manager::borrowing(&owner);
    assert_eq!(owner.reconnect(ffi::SCARD_SHARE_EXCLUSIVE, ffi::SCARD_LEAVE_CARD), Ok(()));
    ok(manager.reconnect());
    echo_ok(&manager, b"exclusive now");
    assert_eq!(another_program_connects(lease.name()), Err(SCM_SCARD_E_SHARING_VIOLATION));
    // (The way back, the owner reconnecting SHARED, is not tried: pcsc-lite 1.9.9 then keeps the
    // card's lock on the handle and other programs' connects wait, whatever the library does.)
}

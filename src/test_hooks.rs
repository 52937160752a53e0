//! Test-only fault injection, compiled only with the `test-hooks` feature (which only this
//! crate's own tests enable). Rust-only: nothing here is `extern "C"`, so it is neither in the
//! header nor among the library's exported symbols.

use std::cell::{Cell, RefCell};

thread_local! {
    /// Per thread, so that tests running in parallel never trip over each other's hook.
    static PANIC_ARMED: Cell<bool> = const { Cell::new(false) };
    /// The window this thread armed, if any. No destructor, so reading it registers none: every
    /// look-up reads it, from thread-exit destructors too (see the tests).
    static WINDOW_ARMED: Cell<Option<Window>> = const { Cell::new(None) };
    /// Per thread too: only the call of the thread that armed it is interrupted. It has a
    /// destructor (it owns the closure), so only a thread that armed a window touches it.
    static IN_WINDOW: RefCell<Option<Box<dyn FnOnce()>>> = const { RefCell::new(None) };
    /// The answers this thread's next calls of a kind give, oldest first (no destructor, like
    /// the above).
    static SCRIPTED: Cell<[Option<(Call, Answer)>; 2]> = const { Cell::new([None; 2]) };
}

/// A PC/SC call whose next answer a test can script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `CardHandle::end_transaction` (`SCardEndTransaction`): PC/SC refuses there before ending
    /// the transaction (pcsc-lite checks the card's events first: a reset or power-down it
    /// reports leaves the transaction held). pcsc-lite 1.9.9 never lets another connection
    /// reset a card while it is locked, so the lab cannot produce those answers; Windows can.
    EndTransaction,
    /// `Context::establish` (`SCardEstablishContext`).
    Establish,
    /// `Context::list_readers` (`SCardListReaders`).
    ListReaders,
    /// `Context::watch` (`SCardGetStatusChange`).
    Watch,
}

/// What a scripted call answers. The lab's pcscd runs all along and its readers stay plugged
/// in, so it never gives these answers while the service runs; pcsc-lite and WinSCard do when
/// a reader is unplugged or the service stops between two calls, or on a failure of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The call fails with this code without calling PC/SC.
    Fail(crate::scm_hresult),
    /// `Watch` only: the real call, without waiting and with the caller's current states (each
    /// reader then as PC/SC has it, flagged changed where PC/SC flags it), then the reader at
    /// this index reported as WinSCard reports a reader being unplugged that it still lists:
    /// `SCARD_STATE_UNKNOWN | SCARD_STATE_IGNORE | SCARD_STATE_CHANGED`, kept as `watch` keeps
    /// any answer. An index past the readers watched panics.
    Unknown(usize),
    /// `ListReaders` only: the real list with its last reader left out, as PC/SC lists the
    /// readers before one is plugged in.
    LastLeftOut,
    /// `Watch` only: a reader plugged in during the call. pcsc-lite 1.9.9 ends the wait for it
    /// only if the notification reader is watched, flagged changed; here the real call is then
    /// made without waiting, as for `Unknown`, and the notification reader flagged. Without the
    /// notification reader, the real call as asked.
    Plugged,
}

/// Makes this thread's next `call` answer `answer`; every other call goes to PC/SC. Two
/// answers at most wait at a time per thread. An answer `call` cannot give panics here, at the
/// test's own line, rather than being skipped by the call.
#[track_caller]
pub fn script(call: Call, answer: Answer) {
    let fits = match answer {
        Answer::Fail(_) => true,
        Answer::Unknown(_) | Answer::Plugged => call == Call::Watch,
        Answer::LastLeftOut => call == Call::ListReaders,
    };
    assert!(fits, "scardmanage test hook: {call:?} cannot answer {answer:?}");
    let mut script = SCRIPTED.get();
    let free = script.iter_mut().find(|entry| entry.is_none()).expect("two scripted answers at most");
    *free = Some((call, answer));
    SCRIPTED.set(script);
}

/// The first answer scripted for this `call`, taken: `None` (PC/SC answers) if there is none.
pub(crate) fn scripted(call: Call) -> Option<Answer> {
    let mut script = SCRIPTED.get();
    let at = script.iter().position(|entry| entry.is_some_and(|(scripted, _)| scripted == call))?;
    let (_, answer) = script[at].take()?;
    script[at..].rotate_left(1);
    SCRIPTED.set(script);
    Some(answer)
}

/// The answers scripted on this thread that no call has given yet, oldest first: a test that
/// scripts answers asserts at its end that this is empty, so that it cannot pass with an answer
/// its calls never met.
pub fn scripted_left() -> Vec<(Call, Answer)> {
    SCRIPTED.get().into_iter().flatten().collect()
}

/// Makes the next call on a live manager from this thread panic inside the library, while it
/// holds that manager's lock: the panic boundary must turn it into `SCM_E_UNEXPECTED`.
pub fn panic_in_next_manager_call() {
    PANIC_ARMED.set(true);
}

pub(crate) fn panic_if_armed() {
    if PANIC_ARMED.replace(false) {
        panic!("scardmanage test hook: forced panic inside a call");
    }
}

/// A place inside a library call where a test can run code of its own, as another thread or
/// the card could act there.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// A token look-up, after the token's generation was checked and before the manager's lock.
    Lookup,
    /// The start of `scm_wait_for_change`, before the reader is looked at: after the
    /// connection's status was asked, when the manager last saw its connection.
    WaitLook,
}

/// Runs `interleave` inside the next token look-up this thread makes, after the token's
/// generation has been checked and before the manager's lock is taken: the window in which
/// another thread may release that manager and a new one may take its slot. `interleave` may
/// call the library (its own look-ups are not interrupted), so a test can play that other
/// thread's part deterministically.
pub fn in_next_lookup_window(interleave: impl FnOnce() + 'static) {
    arm(Window::Lookup, Box::new(interleave));
}

/// Runs `interleave` inside this thread's next `scm_wait_for_change`, between its first look at
/// the manager's connection and its first look at the reader: where a card pulled out is seen
/// by one and not the other. It runs under the manager's lock, so it must not call the library
/// on that manager.
pub fn in_next_wait_start(interleave: impl FnOnce() + 'static) {
    arm(Window::WaitLook, Box::new(interleave));
}

/// One window at a time per thread: arming another replaces a window not yet reached.
fn arm(window: Window, interleave: Box<dyn FnOnce()>) {
    IN_WINDOW.set(Some(interleave));
    WINDOW_ARMED.set(Some(window));
}

pub(crate) fn run_window(window: Window) {
    if WINDOW_ARMED.get() != Some(window) {
        return;
    }
    WINDOW_ARMED.set(None);
    // `try_with`: a thread that armed a window may end before using it, and look up from a
    // thread-exit destructor after the window's thread-local is gone.
    if let Some(interleave) = IN_WINDOW.try_with(RefCell::take).ok().flatten() {
        interleave();
    }
}

#[cfg(test)]
mod scripts {
    use super::*;
    use crate::hresult::SCM_SCARD_E_NO_MEMORY;

    /// Answers come out per call, oldest first; those not taken are left.
    #[test]
    fn a_call_takes_its_own_answer_and_leaves_the_others() {
        script(Call::ListReaders, Answer::LastLeftOut);
        script(Call::Watch, Answer::Fail(SCM_SCARD_E_NO_MEMORY));
        assert_eq!(scripted(Call::Establish), None);
        assert_eq!(scripted(Call::Watch), Some(Answer::Fail(SCM_SCARD_E_NO_MEMORY)));
        assert_eq!(scripted_left(), [(Call::ListReaders, Answer::LastLeftOut)]);
        assert_eq!(scripted(Call::ListReaders), Some(Answer::LastLeftOut));
        assert_eq!(scripted_left(), []);
    }

    /// An answer its call cannot give is a misscripted test: it fails where it was scripted.
    #[test]
    #[should_panic(expected = "ListReaders cannot answer Plugged")]
    fn an_answer_of_another_call_panics() {
        script(Call::ListReaders, Answer::Plugged);
    }
}

/// glibc runs `pthread` key destructors after the thread-locals' destructors, and a thread-local
/// with a destructor first touched from one registers that destructor with glibc for good: its
/// record is never freed and the library can no longer be unloaded. A test-hooks build did that
/// in every thread whose first look-up came from a key destructor, which the shipped library
/// never does. Measured in a child process, where no other test allocates meanwhile.
#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::handle_table::HandleTable;

    const CHILD: &str = "SCM_TEST_HOOKS_CHILD";
    const NAME: &str = "test_hooks::tests::a_look_up_from_a_key_destructor_leaves_nothing_behind";

    static TABLE: HandleTable<()> = HandleTable::new();
    static TOKEN: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn look_up(_: *mut libc::c_void) {
        assert_eq!(TABLE.with(TOKEN.load(Ordering::SeqCst), |_| ()), Ok(()));
    }

    fn allocated() -> usize {
        // SAFETY: no arguments; glibc sums its arenas.
        unsafe { libc::mallinfo2() }.uordblks
    }

    #[test]
    fn a_look_up_from_a_key_destructor_leaves_nothing_behind() {
        if std::env::var_os(CHILD).is_none() {
            let output = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
                .env(CHILD, "1")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "the child ended with {:?}\n{stderr}", output.status);
            let figure = stderr.lines().find(|line| line.starts_with("look-ups from key destructors:"));
            eprintln!("{}", figure.expect("the child measured"));
            return;
        }
        TOKEN.store(TABLE.insert(()).unwrap(), Ordering::SeqCst);
        let mut key = 0;
        // SAFETY: a valid out-pointer and a destructor that takes any value.
        assert_eq!(unsafe { libc::pthread_key_create(&mut key, Some(look_up)) }, 0);
        let threads = |count: usize| {
            for _ in 0..count {
                // SAFETY: a key of this process; any non-NULL value has the destructor run.
                std::thread::spawn(move || {
                    assert_eq!(unsafe { libc::pthread_setspecific(key, 1 as *const _) }, 0)
                })
                .join()
                .unwrap();
            }
        };
        // The measure sees a block kept across it (below glibc's mmap threshold, so from the
        // arenas `mallinfo2` sums): a measure blind to it would pass the assertion below whatever
        // the threads keep.
        let empty = allocated();
        let block = std::hint::black_box(vec![1u8; 64 << 10]);
        assert!(allocated() >= empty + block.len(), "mallinfo2 missed a {} byte block", block.len());
        drop(block);
        // Warm up: the allocator's arenas reach their steady size.
        threads(50);
        let before = allocated();
        let count = 2000;
        threads(count);
        let grown = allocated().saturating_sub(before);
        eprintln!("look-ups from key destructors: {count} threads, {grown} bytes more allocated");
        // glibc's record of a thread-local's destructor takes 48 bytes.
        assert!(grown < count * 8, "{grown} bytes kept by {count} ended threads");
    }
}

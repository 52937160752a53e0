//! Test-only fault injection, compiled only with the `test-hooks` feature (which only this
//! crate's own tests enable). Rust-only: nothing here is `extern "C"`, so it is neither in the
//! header nor among the library's exported symbols.

use std::cell::{Cell, RefCell};

thread_local! {
    /// Per thread, so that tests running in parallel never trip over each other's hook.
    static PANIC_ARMED: Cell<bool> = const { Cell::new(false) };
    /// Per thread too: only the look-up of the thread that armed it is interrupted.
    static IN_LOOKUP_WINDOW: RefCell<Option<Box<dyn FnOnce()>>> = const { RefCell::new(None) };
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

/// Runs `interleave` inside the next token look-up this thread makes, after the token's
/// generation has been checked and before the manager's lock is taken: the window in which
/// another thread may release that manager and a new one may take its slot. `interleave` may
/// call the library (its own look-ups are not interrupted), so a test can play that other
/// thread's part deterministically.
pub fn in_next_lookup_window(interleave: impl FnOnce() + 'static) {
    IN_LOOKUP_WINDOW.set(Some(Box::new(interleave)));
}

pub(crate) fn run_lookup_window() {
    // `try_with`: look-ups also run from thread-exit destructors, after this thread-local (which
    // has a destructor of its own) is gone; no window is armed there.
    if let Some(interleave) = IN_LOOKUP_WINDOW.try_with(RefCell::take).ok().flatten() {
        interleave();
    }
}

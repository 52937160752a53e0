//! Test-only fault injection, compiled only with the `test-hooks` feature (which only this
//! crate's own tests enable). Rust-only: nothing here is `extern "C"`, so it is neither in the
//! header nor among the library's exported symbols.

use std::cell::Cell;

thread_local! {
    /// Per thread, so that tests running in parallel never trip over each other's hook.
    static PANIC_ARMED: Cell<bool> = const { Cell::new(false) };
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

//! Contexts of detached readers, kept for the next attachment.
//!
//! Establishing a context is a new socket to pcscd and a thread there: about three quarters of
//! an attach + detach cycle when done every time. A few cover attach/detach cycles; more would
//! hold pcscd threads for nothing. A kept context that outlived its daemon costs one failed call:
//! every connection attempt already re-establishes on a service loss.
//!
//! The kept contexts are released when the process exits (or the library is unloaded), so that
//! a program that released all its managers holds no PC/SC context at exit: memory checkers
//! then see nothing of ours left behind (pcsc-lite's records of an open context show as lost).

use std::sync::Mutex;
#[cfg(not(windows))]
use std::sync::Once;

use crate::handle_table::lock_ignoring_poison;
use crate::scard::{self, Context, Result};

static SPARE: Mutex<Vec<Context>> = Mutex::new(Vec::new());
const KEPT: usize = 4;
#[cfg(not(windows))]
static RELEASE_AT_EXIT: Once = Once::new();

/// A spare context, or a new one. The lock is never held across a PC/SC call.
pub fn take() -> Result<Context> {
    let spare = lock_ignoring_poison(&SPARE).pop();
    match spare {
        Some(context) => Ok(context),
        None => Context::establish(),
    }
}

/// Runs `f` on a spare context. A spare that outlived its service (`f` fails with a service
/// loss) is released and `f` runs once more on a new context; a context whose service is gone
/// is never kept.
pub fn with_spare<R>(f: impl Fn(&Context) -> Result<R>) -> Result<R> {
    let mut context = take()?;
    let mut result = f(&context);
    if result.as_ref().is_err_and(|code| scard::is_service_lost(*code)) {
        context = Context::establish()?;
        result = f(&context);
    }
    match &result {
        Err(code) if scard::is_service_lost(*code) => drop(context),
        _ => keep(context),
    }
    result
}

/// Keeps a context for the next attachment, or releases it (outside the lock) when enough are
/// kept.
pub fn keep(context: Context) {
    // Not on Windows: there the handler would run under the loader lock when the DLL unloads,
    // where calling into WinSCard can deadlock; the system closes the contexts with the process.
    #[cfg(not(windows))]
    RELEASE_AT_EXIT.call_once(|| {
        // SAFETY: registering a plain function. `atexit` comes from libc_nonshared, so the
        // handler is tied to this library and also runs if it is unloaded first. If it cannot be
        // registered, the contexts simply stay open until the process ends.
        unsafe { libc::atexit(release_all) };
    });
    let surplus = {
        let mut spare = lock_ignoring_poison(&SPARE);
        if spare.len() < KEPT {
            spare.push(context);
            None
        } else {
            Some(context)
        }
    };
    drop(surplus);
}

/// Releases every kept context; attachments made later establish their own again.
#[cfg(not(windows))]
extern "C" fn release_all() {
    let spare = std::mem::take(&mut *lock_ignoring_poison(&SPARE));
    drop(spare);
}

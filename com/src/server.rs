//! What the whole DLL shares: the count of live objects and server locks behind
//! `DllCanUnloadNow`, the DLL's own path, and the guard that keeps a Rust panic from unwinding
//! into a COM caller.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicIsize, Ordering};
use windows::core::HRESULT;
use windows::Win32::Foundation::{E_UNEXPECTED, HMODULE, MAX_PATH};
use windows::Win32::System::LibraryLoader::{
    GetModuleFileNameW, GetModuleHandleExW, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
    GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
};

/// Objects of this DLL alive now (every COM object, class factories included) plus
/// `IClassFactory::LockServer(TRUE)` calls not yet undone. The DLL may be unloaded only at zero.
static IN_USE: AtomicIsize = AtomicIsize::new(0);

/// A field of every COM object of the DLL: counts the object as live from its creation to its
/// destruction (the last `Release`), so `DllCanUnloadNow` cannot let the code of a live object go.
pub(crate) struct Live(());

impl Live {
    pub(crate) fn new() -> Self {
        IN_USE.fetch_add(1, Ordering::SeqCst);
        Live(())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        IN_USE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `IClassFactory::LockServer`: a lock counts as a live object. An unlock without a lock is
/// refused rather than letting the count go below the objects really alive.
pub(crate) fn lock_server(lock: bool) -> bool {
    if lock {
        IN_USE.fetch_add(1, Ordering::SeqCst);
        return true;
    }
    IN_USE.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n > 0).then(|| n - 1)).is_ok()
}

pub(crate) fn in_use() -> bool {
    IN_USE.load(Ordering::SeqCst) != 0
}

/// Runs the body of a COM method; a panic inside becomes `E_UNEXPECTED` instead of unwinding
/// across the `extern "system"` boundary (which would abort the caller's process).
pub(crate) fn guard(body: impl FnOnce() -> HRESULT) -> HRESULT {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(E_UNEXPECTED)
}

/// The full path of this DLL (not of the program that loaded it), for registration and for
/// loading the type library embedded in it.
pub(crate) fn module_path() -> windows::core::Result<Vec<u16>> {
    let mut module = HMODULE::default();
    // SAFETY: with FROM_ADDRESS the "name" is an address inside the module wanted: this
    // function's own code is in this DLL. UNCHANGED_REFCOUNT: no FreeLibrary is owed.
    unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
            windows::core::PCWSTR(module_path as *const u16),
            &mut module,
        )?
    };
    let mut path = vec![0u16; MAX_PATH as usize];
    loop {
        // SAFETY: `module` is this DLL's handle, `path` a writable buffer of its length.
        let len = unsafe { GetModuleFileNameW(Some(module), &mut path) } as usize;
        if len == 0 {
            return Err(windows::core::Error::from_thread());
        }
        if len < path.len() {
            path.truncate(len);
            return Ok(path);
        }
        // Truncated: a longer path than MAX_PATH (long path support); try a bigger buffer.
        path.resize(path.len() * 2, 0);
    }
}

//! The class factories `DllGetClassObject` hands out: one per creatable class.

#![allow(non_snake_case)] // the COM method names

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use windows::core::BOOL;
use windows::core::{implement, IUnknown, Interface, Ref, GUID};
use windows::Win32::Foundation::{CLASS_E_NOAGGREGATION, E_POINTER, E_UNEXPECTED};
use windows::Win32::System::Com::{IClassFactory, IClassFactory_Impl};

use crate::dispatch::Failure;
use crate::server::{lock_server, Live};

/// Makes a new object of a class, as its IUnknown.
pub(crate) type Make = fn() -> crate::dispatch::Result<IUnknown>;

#[implement(IClassFactory)]
pub(crate) struct Factory {
    make: Make,
    _live: Live,
}

impl Factory {
    pub(crate) fn new_object(make: Make) -> IClassFactory {
        Factory { make, _live: Live::new() }.into()
    }
}

/// The factory's answers as HRESULTs, with a panic as `E_UNEXPECTED`.
fn guarded(body: impl FnOnce() -> windows::core::Result<()>) -> windows::core::Result<()> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(Err(E_UNEXPECTED.into()))
}

fn code(failure: Failure) -> windows::core::Error {
    match failure {
        Failure::Call { hr, .. } | Failure::Dispatch { hr, .. } => hr.into(),
    }
}

impl IClassFactory_Impl for Factory_Impl {
    fn CreateInstance(
        &self,
        outer: Ref<IUnknown>,
        iid: *const GUID,
        out: *mut *mut c_void,
    ) -> windows::core::Result<()> {
        guarded(|| {
            if out.is_null() || iid.is_null() {
                return Err(E_POINTER.into());
            }
            // SAFETY: non-NULL: the caller's [out] pointer, NULL until an object is given.
            unsafe { out.write(std::ptr::null_mut()) };
            if outer.is_some() {
                return Err(CLASS_E_NOAGGREGATION.into());
            }
            let object = (self.make)().map_err(code)?;
            // SAFETY: `iid` (non-NULL) is the caller's GUID; `out` is writable; `query` writes
            // the interface AddRef'd, or NULL and E_NOINTERFACE.
            unsafe { object.query(iid, out) }.ok()
        })
    }

    fn LockServer(&self, lock: BOOL) -> windows::core::Result<()> {
        guarded(|| if lock_server(lock.as_bool()) { Ok(()) } else { Err(E_UNEXPECTED.into()) })
    }
}

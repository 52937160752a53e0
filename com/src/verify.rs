//! `ISCardVerify` (IID 4029DD85-5902-11D0-B84C-00C04FD424B9): card holder verification on the
//! card the creating ISCardManage is attached to, over the library's `scm_chv_*`. Codes are
//! copied out of the caller's buffers only to be handed to the library, and those copies are
//! wiped ([`Secret`]); they appear in no message.

#![allow(non_snake_case)] // the COM method names, as the vtable spells them

use std::ffi::c_void;
use windows::core::{implement, interface, Interface, GUID, HRESULT};
use windows::Win32::Foundation::{E_INVALIDARG, E_POINTER};
use windows::Win32::System::Variant::VARIANT;

use crate::byte_buffer::IByteBuffer;
use crate::dispatch::{
    call, scm, Args, Automation, Failure, IAutomation, IAutomation_Impl, IAutomation_Vtbl, IErrorSupport,
    Result,
};
use crate::manage::ISCardManage;
use crate::objects::{
    arg_bytes, arg_bytes_required, borrowed, code_reference, data_ptr, optional_bytes, tries_context, Secret,
};
use crate::server::Live;
use scardmanage::{scm_chv, scm_manage, SCM_TRIES_UNKNOWN};

#[interface("4029DD85-5902-11D0-B84C-00C04FD424B9")]
pub(crate) unsafe trait ISCardVerify: IAutomation {
    fn ChangeCode(&self, old: *mut c_void, new: *mut c_void, flags: i32, reference: i32) -> HRESULT;
    fn ResetSecurityState(&self) -> HRESULT;
    fn Unblock(&self, data: i32, flags: i32, reference: i32) -> HRESULT;
    fn Verify(&self, code: *mut c_void, flags: i32, reference: i32) -> HRESULT;
}

/// One `scm_chv` of the library, on the manager of the ISCardManage that made it.
#[implement(ISCardVerify, IErrorSupport)]
pub(crate) struct Verify {
    /// The library's token (`scm_chv *`).
    token: usize,
    /// The creating ISCardManage, kept alive as long as this object (see file_access.rs).
    _manager: ISCardManage,
    _live: Live,
}

/// The code in a buffer, copied for the library and wiped after; `Nothing` is no code.
pub(crate) fn code(buffer: Option<&IByteBuffer>) -> Result<Secret> {
    Ok(Secret(optional_bytes(buffer)?))
}

impl Verify {
    pub(crate) fn create(manager: *mut scm_manage, this: &ISCardManage) -> Result<ISCardVerify> {
        let mut token = std::ptr::null_mut();
        // SAFETY: `token` is writable; the library checks the manager's token.
        scm(unsafe { scardmanage::scm_create_chv_verification(manager, &mut token) })?;
        Ok(Verify { token: token as usize, _manager: this.clone(), _live: Live::new() }.into())
    }

    fn token(&self) -> *mut scm_chv {
        self.token as *mut scm_chv
    }

    /// `old` empty: CHANGE REFERENCE DATA with the new code only (a reference verified before).
    fn change_code(&self, old: &Secret, new: &Secret, flags: i32, reference: i32) -> Result<()> {
        let (reference, flags) = code_reference(reference, flags)?;
        let mut tries = SCM_TRIES_UNKNOWN;
        // SAFETY: the codes are readable for their lengths and outlive the call.
        scm(unsafe {
            scardmanage::scm_chv_change_code(
                self.token(),
                reference,
                data_ptr(&old.0),
                old.0.len(),
                data_ptr(&new.0),
                new.0.len(),
                flags,
                &mut tries,
            )
        })
        .map_err(|failure| tries_context(failure, tries))
    }

    fn reset_security_state(&self) -> Result<()> {
        // SAFETY: the library checks the token.
        scm(unsafe { scardmanage::scm_chv_reset_security_state(self.token()) })
    }

    /// RESET RETRY COUNTER without codes: `lData` is Microsoft's vendor data, for which a LONG
    /// can carry no unblocking code; only 0 (none) is meaningful here.
    fn unblock(&self, data: i32, flags: i32, reference: i32) -> Result<()> {
        if data != 0 {
            return Err(Failure::from(E_INVALIDARG).context("lData must be 0"));
        }
        let (reference, flags) = code_reference(reference, flags)?;
        let mut tries = SCM_TRIES_UNKNOWN;
        // SAFETY: no codes (NULL, 0); `tries` is writable.
        scm(unsafe {
            scardmanage::scm_chv_unblock(
                self.token(),
                reference,
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                flags,
                &mut tries,
            )
        })
        .map_err(|failure| tries_context(failure, tries))
    }

    fn verify(&self, code: &Secret, flags: i32, reference: i32) -> Result<()> {
        let (reference, flags) = code_reference(reference, flags)?;
        let mut tries = SCM_TRIES_UNKNOWN;
        // SAFETY: the code is readable for its length and outlives the call.
        scm(unsafe {
            scardmanage::scm_chv_verify(
                self.token(),
                reference,
                data_ptr(&code.0),
                code.0.len(),
                flags,
                &mut tries,
            )
        })
        .map_err(|failure| tries_context(failure, tries))
    }
}

impl Drop for Verify {
    fn drop(&mut self) {
        // SAFETY: the token is this object's own, released once, here, before the manager's.
        unsafe { scardmanage::scm_chv_release(self.token()) };
    }
}

impl ISCardVerify_Impl for Verify_Impl {
    unsafe fn ChangeCode(&self, old: *mut c_void, new: *mut c_void, flags: i32, reference: i32) -> HRESULT {
        call::<Verify_Impl>(|| {
            self.change_code(&code(borrowed(&old))?, &code(borrowed(&new))?, flags, reference)
        })
    }

    unsafe fn ResetSecurityState(&self) -> HRESULT {
        call::<Verify_Impl>(|| self.reset_security_state())
    }

    unsafe fn Unblock(&self, data: i32, flags: i32, reference: i32) -> HRESULT {
        call::<Verify_Impl>(|| self.unblock(data, flags, reference))
    }

    unsafe fn Verify(&self, code_buffer: *mut c_void, flags: i32, reference: i32) -> HRESULT {
        call::<Verify_Impl>(|| {
            let buffer = borrowed(&code_buffer).ok_or(Failure::from(E_POINTER))?;
            self.verify(&code(Some(buffer))?, flags, reference)
        })
    }
}

impl Automation for Verify_Impl {
    const IID: GUID = ISCardVerify::IID;

    fn invoke(&self, id: i32, args: &Args<'_>) -> Result<VARIANT> {
        let none = VARIANT::default();
        match id {
            1 => {
                args.count(4, 4)?;
                let old = Secret(arg_bytes(args, 0)?.unwrap_or_default());
                let new = Secret(arg_bytes(args, 1)?.unwrap_or_default());
                self.change_code(&old, &new, args.i32(2)?, args.i32(3)?).map(|()| none)
            }
            2 => {
                args.count(0, 0)?;
                self.reset_security_state().map(|()| none)
            }
            3 => {
                args.count(3, 3)?;
                self.unblock(args.i32(0)?, args.i32(1)?, args.i32(2)?).map(|()| none)
            }
            4 => {
                args.count(3, 3)?;
                let code = Secret(arg_bytes_required(args, 0)?);
                self.verify(&code, args.i32(1)?, args.i32(2)?).map(|()| none)
            }
            _ => Err(Failure::unknown_member()),
        }
    }
}

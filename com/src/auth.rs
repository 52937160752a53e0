//! `ISCardAuth` (IID 7B063D61-6E40-11D0-B858-00C04FD424B9): authentication of the application,
//! the card and the user on the card the creating ISCardManage is attached to, over the
//! library's `scm_auth_*`. Microsoft's `pParam` ("vendor-specific parameters") is the reference
//! the ISO/IEC 7816-4 command names in P2: one byte, or none for 0 (objects.idl).

#![allow(non_snake_case)] // the COM method names, as the vtable spells them

use std::ffi::c_void;
use windows::core::{implement, interface, Interface, GUID, HRESULT};
use windows::Win32::Foundation::{E_INVALIDARG, E_POINTER};
use windows::Win32::System::Variant::VARIANT;

use crate::dispatch::{
    call, scm, Args, Automation, Failure, IAutomation, IAutomation_Impl, IAutomation_Vtbl, IErrorSupport,
    Result,
};
use crate::manage::ISCardManage;
use crate::objects::{
    arg_bytes, arg_bytes_required, borrowed, data_ptr, give, optional_bytes, required_bytes, tries_context,
    BufferResult, Secret,
};
use crate::server::Live;
use scardmanage::{scm_auth, scm_manage, SCM_TRIES_UNKNOWN};

#[interface("7B063D61-6E40-11D0-B858-00C04FD424B9")]
pub(crate) unsafe trait ISCardAuth: IAutomation {
    fn APP_Auth(&self, algorithm: i32, param: *mut c_void, buffer: *mut c_void) -> HRESULT;
    fn GetChallenge(
        &self,
        algorithm: i32,
        length: i32,
        param: *mut c_void,
        buffer: *mut *mut c_void,
    ) -> HRESULT;
    fn ICC_Auth(&self, algorithm: i32, param: *mut c_void, buffer: *mut *mut c_void) -> HRESULT;
    fn User_Auth(&self, algorithm: i32, param: *mut c_void, buffer: *mut c_void) -> HRESULT;
}

/// The most an INTERNAL AUTHENTICATE can answer: an extended-length response.
const LONGEST_ANSWER: usize = 65536;

/// One `scm_auth` of the library, on the manager of the ISCardManage that made it.
#[implement(ISCardAuth, IErrorSupport)]
pub(crate) struct Auth {
    /// The library's token (`scm_auth *`).
    token: usize,
    /// The creating ISCardManage, kept alive as long as this object (see file_access.rs).
    _manager: ISCardManage,
    _live: Live,
}

/// `pParam` as a reference: empty (or `Nothing`) is 0, one byte is that byte.
fn reference(param: &[u8]) -> Result<u32> {
    match param {
        [] => Ok(0),
        [byte] => Ok(u32::from(*byte)),
        _ => Err(Failure::from(E_INVALIDARG).context("pParam holds one reference byte")),
    }
}

/// GET CHALLENGE and VERIFY name no algorithm: Microsoft's `lAlgoID` must be 0 for them.
fn no_algorithm(algorithm: i32) -> Result<()> {
    if algorithm == 0 {
        Ok(())
    } else {
        Err(Failure::from(E_INVALIDARG).context("this command names no algorithm: lAlgoID must be 0"))
    }
}

impl Auth {
    pub(crate) fn create(manager: *mut scm_manage, this: &ISCardManage) -> Result<ISCardAuth> {
        let mut token = std::ptr::null_mut();
        // SAFETY: `token` is writable; the library checks the manager's token.
        scm(unsafe { scardmanage::scm_create_card_auth(manager, &mut token) })?;
        Ok(Auth { token: token as usize, _manager: this.clone(), _live: Live::new() }.into())
    }

    fn token(&self) -> *mut scm_auth {
        self.token as *mut scm_auth
    }

    fn app_auth(&self, algorithm: i32, param: &[u8], data: &[u8]) -> Result<()> {
        let key = reference(param)?;
        // SAFETY: `data` is readable for its length; the library checks the numbers.
        scm(unsafe {
            scardmanage::scm_auth_app_auth(self.token(), algorithm as u32, key, data_ptr(data), data.len())
        })
    }

    fn challenge(&self, algorithm: i32, length: i32, param: &[u8]) -> Result<Vec<u8>> {
        no_algorithm(algorithm)?;
        if !param.is_empty() {
            return Err(
                Failure::from(E_INVALIDARG).context("GET CHALLENGE names no key: pParam must be empty")
            );
        }
        // A negative length is refused; the library refuses 0 and more than the card can send.
        let mut len =
            usize::try_from(length).map_err(|_| Failure::from(E_INVALIDARG))?.min(LONGEST_ANSWER + 1);
        let mut challenge = vec![0u8; len];
        // SAFETY: `challenge` is writable for `len` bytes.
        scm(unsafe { scardmanage::scm_auth_get_challenge(self.token(), challenge.as_mut_ptr(), &mut len) })?;
        challenge.truncate(len);
        Ok(challenge)
    }

    fn icc_auth(&self, algorithm: i32, param: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        let key = reference(param)?;
        let mut answer = vec![0u8; LONGEST_ANSWER];
        let mut len = answer.len();
        // SAFETY: `data` is readable and `answer` writable for their lengths.
        scm(unsafe {
            scardmanage::scm_auth_icc_auth(
                self.token(),
                algorithm as u32,
                key,
                data_ptr(data),
                data.len(),
                answer.as_mut_ptr(),
                &mut len,
            )
        })?;
        answer.truncate(len);
        Ok(answer)
    }

    fn user_auth(&self, algorithm: i32, param: &[u8], code: &Secret) -> Result<()> {
        no_algorithm(algorithm)?;
        let reference = reference(param)?;
        let mut tries = SCM_TRIES_UNKNOWN;
        // SAFETY: the code is readable for its length and outlives the call.
        scm(unsafe {
            scardmanage::scm_auth_user_auth(
                self.token(),
                reference,
                data_ptr(&code.0),
                code.0.len(),
                &mut tries,
            )
        })
        .map_err(|failure| tries_context(failure, tries))
    }
}

impl Drop for Auth {
    fn drop(&mut self) {
        // SAFETY: the token is this object's own, released once, here, before the manager's.
        unsafe { scardmanage::scm_auth_release(self.token()) };
    }
}

impl ISCardAuth_Impl for Auth_Impl {
    unsafe fn APP_Auth(&self, algorithm: i32, param: *mut c_void, buffer: *mut c_void) -> HRESULT {
        call::<Auth_Impl>(|| {
            self.app_auth(algorithm, &optional_bytes(borrowed(&param))?, &required_bytes(borrowed(&buffer))?)
        })
    }

    unsafe fn GetChallenge(
        &self,
        algorithm: i32,
        length: i32,
        param: *mut c_void,
        buffer: *mut *mut c_void,
    ) -> HRESULT {
        call::<Auth_Impl>(|| {
            if buffer.is_null() {
                return Err(E_POINTER.into());
            }
            let challenge = self.challenge(algorithm, length, &optional_bytes(borrowed(&param))?)?;
            give(buffer, &challenge)
        })
    }

    unsafe fn ICC_Auth(&self, algorithm: i32, param: *mut c_void, buffer: *mut *mut c_void) -> HRESULT {
        call::<Auth_Impl>(|| {
            if buffer.is_null() {
                return Err(E_POINTER.into());
            }
            // SAFETY: non-NULL: the caller's [in, out] pointer, NULL or a buffer it holds.
            let data = optional_bytes(borrowed(unsafe { &*buffer }))?;
            let answer = self.icc_auth(algorithm, &optional_bytes(borrowed(&param))?, &data)?;
            give(buffer, &answer)
        })
    }

    unsafe fn User_Auth(&self, algorithm: i32, param: *mut c_void, buffer: *mut c_void) -> HRESULT {
        call::<Auth_Impl>(|| {
            let code = Secret(required_bytes(borrowed(&buffer))?);
            self.user_auth(algorithm, &optional_bytes(borrowed(&param))?, &code)
        })
    }
}

impl Automation for Auth_Impl {
    const IID: GUID = ISCardAuth::IID;

    fn invoke(&self, id: i32, args: &Args<'_>) -> Result<VARIANT> {
        let none = VARIANT::default();
        match id {
            1 => {
                args.count(3, 3)?;
                let param = arg_bytes(args, 1)?.unwrap_or_default();
                let data = arg_bytes_required(args, 2)?;
                self.app_auth(args.i32(0)?, &param, &data).map(|()| none)
            }
            2 => {
                args.count(3, 4)?;
                let param = arg_bytes(args, 2)?.unwrap_or_default();
                let result = BufferResult::new(args, 3)?;
                result.give(&self.challenge(args.i32(0)?, args.i32(1)?, &param)?)
            }
            3 => {
                args.count(2, 3)?;
                let param = arg_bytes(args, 1)?.unwrap_or_default();
                let result = BufferResult::new(args, 2)?;
                let data = optional_bytes(result.existing())?;
                result.give(&self.icc_auth(args.i32(0)?, &param, &data)?)
            }
            4 => {
                args.count(3, 3)?;
                let param = arg_bytes(args, 1)?.unwrap_or_default();
                let code = Secret(arg_bytes_required(args, 2)?);
                self.user_auth(args.i32(0)?, &param, &code).map(|()| none)
            }
            _ => Err(Failure::unknown_member()),
        }
    }
}

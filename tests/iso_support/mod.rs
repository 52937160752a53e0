//! What the ISO tests share: a leased reader holding the lab's ISO card, with a manager attached
//! to it, and `scm_transmit_ex` as a `Result`.
#![allow(dead_code)]

use std::ptr;

use scardmanage::*;
use scardmanage_lab::iso::{self, IsoControl, IsoOptions};
use scardmanage_lab::{lease_with, wait_card, ReaderLease};

use crate::common::{ok, Manager, WAIT};

/// A reader with the lab's ISO card in it and a manager attached. Dropped in field order: the
/// manager is released before the lease gives the reader back.
pub struct IsoReader {
    pub manager: Manager,
    pub card: IsoControl,
    pub lease: ReaderLease,
}

impl IsoReader {
    pub fn new(options: IsoOptions) -> IsoReader {
        let (card, control) = iso::card(options);
        let lease = lease_with(card);
        lease.insert();
        assert!(wait_card(lease.name(), true, WAIT), "the ISO card shows up");
        IsoReader { manager: Manager::attached(lease.name()), card: control, lease }
    }

    pub fn m(&self) -> *mut scm_manage {
        self.manager.0
    }

    /// `scm_transmit_ex` with a buffer that always fits: the response (data and status word).
    pub fn transmit_ex(&self, flags: u32, command: &[u8]) -> Result<Vec<u8>, scm_hresult> {
        transmit_ex(self.m(), flags, command)
    }

    /// SELECT of the application DF by name (no answer data asked).
    pub fn select_application(&self) {
        let select = [&[0x00, 0xA4, 0x04, 0x0C, iso::DF_NAME.len() as u8][..], iso::DF_NAME].concat();
        assert_eq!(self.transmit_ex(SCM_ISO_ALL, &select).unwrap(), [0x90, 0x00]);
    }

    /// A new verification object on this manager, released on drop.
    pub fn chv(&self) -> Chv {
        let mut chv = ptr::null_mut();
        ok(unsafe { scm_create_chv_verification(self.m(), &mut chv) });
        Chv(chv)
    }

    /// A new authentication object on this manager, released on drop.
    pub fn auth(&self) -> Auth {
        let mut auth = ptr::null_mut();
        ok(unsafe { scm_create_card_auth(self.m(), &mut auth) });
        Auth(auth)
    }
}

pub fn transmit_ex(m: *mut scm_manage, flags: u32, command: &[u8]) -> Result<Vec<u8>, scm_hresult> {
    let mut response = vec![0u8; SCM_MAX_APDU_SIZE];
    let mut len = response.len();
    let hr = unsafe {
        scm_transmit_ex(m, flags, command.as_ptr(), command.len(), response.as_mut_ptr(), &mut len)
    };
    match hr {
        SCM_S_OK => {
            response.truncate(len);
            Ok(response)
        }
        code => Err(code),
    }
}

/// A verification object released on drop.
pub struct Chv(pub *mut scm_chv);

// SAFETY: tokens; the library serializes calls on one object.
unsafe impl Send for Chv {}
unsafe impl Sync for Chv {}

impl Drop for Chv {
    fn drop(&mut self) {
        unsafe { scm_chv_release(self.0) };
    }
}

impl Chv {
    /// `scm_chv_verify`: the code and the tries written beside it (`None` when not written).
    pub fn verify(&self, reference: u32, code: &[u8]) -> (scm_hresult, Option<u32>) {
        let mut tries = 0xEEEE_EEEE;
        let hr = unsafe { scm_chv_verify(self.0, reference, code.as_ptr(), code.len(), 0, &mut tries) };
        (hr, (tries != 0xEEEE_EEEE).then_some(tries))
    }

    pub fn tries_left(&self, reference: u32) -> Result<u32, (scm_hresult, u32)> {
        let mut tries = 0xEEEE_EEEE;
        match unsafe { scm_chv_get_tries_left(self.0, reference, &mut tries) } {
            SCM_S_OK => Ok(tries),
            code => Err((code, tries)),
        }
    }
}

/// An authentication object released on drop.
pub struct Auth(pub *mut scm_auth);

// SAFETY: tokens; the library serializes calls on one object.
unsafe impl Send for Auth {}
unsafe impl Sync for Auth {}

impl Drop for Auth {
    fn drop(&mut self) {
        unsafe { scm_auth_release(self.0) };
    }
}

impl Auth {
    pub fn challenge(&self, len: usize) -> Result<Vec<u8>, scm_hresult> {
        let mut out = vec![0u8; len];
        let mut got = len;
        match unsafe { scm_auth_get_challenge(self.0, out.as_mut_ptr(), &mut got) } {
            SCM_S_OK => {
                out.truncate(got);
                Ok(out)
            }
            code => Err(code),
        }
    }

    pub fn icc_auth(&self, key: u32, data: &[u8]) -> Result<Vec<u8>, scm_hresult> {
        let mut out = vec![0u8; 1024];
        let mut len = out.len();
        match unsafe {
            scm_auth_icc_auth(self.0, 0, key, data.as_ptr(), data.len(), out.as_mut_ptr(), &mut len)
        } {
            SCM_S_OK => {
                out.truncate(len);
                Ok(out)
            }
            code => Err(code),
        }
    }

    pub fn app_auth(&self, key: u32, data: &[u8]) -> scm_hresult {
        unsafe { scm_auth_app_auth(self.0, 0, key, data.as_ptr(), data.len()) }
    }
}

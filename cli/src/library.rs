//! The few library calls the tool makes, made safe: each one owns its buffers and turns a
//! failed HRESULT into an [`Error`] that names the call.

use std::ffi::{CStr, CString};
use std::fmt;
use std::ptr;

use scardmanage::{
    scm_attach_by_ifd, scm_create, scm_error_message, scm_get_atr, scm_hresult, scm_list_readers, scm_manage,
    scm_release, scm_status, scm_transmit, SCM_E_INVALIDARG, SCM_MAX_APDU_SIZE,
    SCM_SCARD_E_INSUFFICIENT_BUFFER, SCM_SCARD_E_NO_READERS_AVAILABLE,
};

/// A failed call: which one, and the HRESULT it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    pub call: &'static str,
    pub hr: scm_hresult,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The same shape as the C examples' errors: call, code as PC/SC documents it, text.
        write!(f, "{}: {:#010x} {}", self.call, self.hr as u32, message(self.hr))
    }
}

fn check(call: &'static str, hr: scm_hresult) -> Result<(), Error> {
    if hr < 0 {
        Err(Error { call, hr })
    } else {
        Ok(())
    }
}

/// The library's text for any value.
pub fn message(hr: scm_hresult) -> String {
    // SAFETY: the library returns a static NUL-terminated text for any value.
    unsafe { CStr::from_ptr(scm_error_message(hr)) }.to_string_lossy().into_owned()
}

/// The readers' names as PC/SC gives them, bytes that need not be UTF-8; none is an empty list,
/// not an error.
pub fn readers() -> Result<Vec<Vec<u8>>, Error> {
    loop {
        let mut len = 0;
        // SAFETY: a size query: NULL buffer, valid length.
        let hr = unsafe { scm_list_readers(ptr::null_mut(), &mut len) };
        if hr == SCM_SCARD_E_NO_READERS_AVAILABLE {
            return Ok(Vec::new());
        }
        check("scm_list_readers", hr)?;
        let mut buffer = vec![0u8; len];
        // SAFETY: `len` writable bytes.
        let hr = unsafe { scm_list_readers(buffer.as_mut_ptr().cast(), &mut len) };
        match hr {
            // A reader appeared between the two calls: ask again.
            SCM_SCARD_E_INSUFFICIENT_BUFFER => continue,
            SCM_SCARD_E_NO_READERS_AVAILABLE => return Ok(Vec::new()),
            _ => check("scm_list_readers", hr)?,
        }
        buffer.truncate(len);
        return Ok(buffer.split(|&b| b == 0).filter(|name| !name.is_empty()).map(<[u8]>::to_vec).collect());
    }
}

/// A manager attached to one reader, released on drop.
pub struct Manager(*mut scm_manage);

impl Manager {
    /// Attaches in shared mode, connecting the card if one is in. The name goes as listed, byte
    /// for byte: the library refuses one that is not UTF-8 rather than reach another reader.
    pub fn attach(reader: &[u8]) -> Result<Manager, Error> {
        let name =
            CString::new(reader).map_err(|_| Error { call: "scm_attach_by_ifd", hr: SCM_E_INVALIDARG })?;
        let mut m = ptr::null_mut();
        // SAFETY: a valid out-pointer.
        check("scm_create", unsafe { scm_create(&mut m) })?;
        let manager = Manager(m);
        // SAFETY: a live manager and a NUL-terminated name.
        check("scm_attach_by_ifd", unsafe { scm_attach_by_ifd(manager.0, name.as_ptr()) })?;
        Ok(manager)
    }

    /// `(SCM_STATE_*, SCM_PROTOCOL_*)`.
    pub fn status(&self) -> Result<(u32, u32), Error> {
        let (mut state, mut protocol) = (0, 0);
        // SAFETY: a live manager and valid out-pointers.
        check("scm_status", unsafe { scm_status(self.0, &mut state, &mut protocol) })?;
        Ok((state, protocol))
    }

    pub fn atr(&self) -> Result<Vec<u8>, Error> {
        let mut atr = [0u8; 64];
        let mut len = atr.len();
        // SAFETY: a live manager and `len` writable bytes.
        check("scm_get_atr", unsafe { scm_get_atr(self.0, atr.as_mut_ptr(), &mut len) })?;
        Ok(atr[..len].to_vec())
    }

    /// The card's whole answer, status word included.
    pub fn transmit(&self, command: &[u8]) -> Result<Vec<u8>, Error> {
        let mut response = vec![0u8; SCM_MAX_APDU_SIZE];
        let mut len = response.len();
        // SAFETY: a live manager, `command.len()` readable and `len` writable bytes.
        check("scm_transmit", unsafe {
            scm_transmit(self.0, command.as_ptr(), command.len(), response.as_mut_ptr(), &mut len)
        })?;
        response.truncate(len);
        Ok(response)
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // SAFETY: the manager is ours and released once. Releasing leaves the card as it is.
        unsafe { scm_release(self.0) };
    }
}

//! The few library calls the tool makes, made safe: each one owns its buffers and turns a
//! failed HRESULT into an [`Error`] that names the call.

use std::ffi::{CStr, CString};
use std::fmt;
use std::ptr;

use scardmanage::{
    scm_attach_by_ifd, scm_chv, scm_chv_release, scm_chv_verify, scm_create, scm_create_chv_verification,
    scm_create_file_access, scm_error_message, scm_file_access, scm_file_access_release, scm_file_change_dir,
    scm_file_close, scm_file_open, scm_file_read, scm_get_atr, scm_hresult, scm_list_readers, scm_manage,
    scm_monitor, scm_monitor_create, scm_monitor_next, scm_monitor_release, scm_release, scm_status,
    scm_transmit, scm_transmit_ex, SCM_E_INVALIDARG, SCM_ISO_ALL, SCM_MAX_APDU_SIZE, SCM_SCARD_E_CANCELLED,
    SCM_SCARD_E_INSUFFICIENT_BUFFER, SCM_SCARD_E_NO_READERS_AVAILABLE, SCM_SCARD_E_TIMEOUT,
    SCM_SCARD_W_CHV_BLOCKED, SCM_SCARD_W_EOF, SCM_SCARD_W_WRONG_CHV, SCM_TRIES_UNKNOWN,
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

    /// The card's whole answer, status word included: with `iso`, through `scm_transmit_ex`
    /// with every ISO help (GET RESPONSE, Le correction, chaining), else exactly as given.
    pub fn transmit(&self, command: &[u8], iso: bool) -> Result<Vec<u8>, Error> {
        // SCM_MAX_APDU_SIZE fits every answer of both calls.
        let mut response = vec![0u8; SCM_MAX_APDU_SIZE];
        let mut len = response.len();
        let (call, hr) = if iso {
            // SAFETY: a live manager, `command.len()` readable and `len` writable bytes.
            ("scm_transmit_ex", unsafe {
                scm_transmit_ex(
                    self.0,
                    SCM_ISO_ALL,
                    command.as_ptr(),
                    command.len(),
                    response.as_mut_ptr(),
                    &mut len,
                )
            })
        } else {
            // SAFETY: as above.
            ("scm_transmit", unsafe {
                scm_transmit(self.0, command.as_ptr(), command.len(), response.as_mut_ptr(), &mut len)
            })
        };
        check(call, hr)?;
        response.truncate(len);
        Ok(response)
    }

    /// A file access object on this manager's card.
    pub fn file_access(&self) -> Result<FileAccess, Error> {
        let mut f = ptr::null_mut();
        // SAFETY: a live manager and a valid out-pointer.
        check("scm_create_file_access", unsafe { scm_create_file_access(self.0, &mut f) })?;
        Ok(FileAccess(f))
    }

    /// A verification object on this manager's card.
    pub fn chv(&self) -> Result<Chv, Error> {
        let mut v = ptr::null_mut();
        // SAFETY: a live manager and a valid out-pointer.
        check("scm_create_chv_verification", unsafe { scm_create_chv_verification(self.0, &mut v) })?;
        Ok(Chv(v))
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // SAFETY: the manager is ours and released once. Releasing leaves the card as it is.
        unsafe { scm_release(self.0) };
    }
}

/// A file access object, released on drop.
pub struct FileAccess(*mut scm_file_access);

/// A reference's text for the library: no NUL inside.
fn reference_text(call: &'static str, text: &str) -> Result<CString, Error> {
    CString::new(text).map_err(|_| Error { call, hr: SCM_E_INVALIDARG })
}

impl FileAccess {
    /// Makes the DF `name` (`SCM_REF_*` `kind`) the current directory.
    pub fn change_dir(&self, kind: u32, name: &str) -> Result<(), Error> {
        let name = reference_text("scm_file_change_dir", name)?;
        // SAFETY: a live object and a NUL-terminated text.
        check("scm_file_change_dir", unsafe { scm_file_change_dir(self.0, kind, name.as_ptr()) })
    }

    /// Every byte of the EF `name` (`SCM_REF_*` `kind`): a transparent file whole, a record
    /// file's records one after the other.
    pub fn read_all(&self, kind: u32, name: &str) -> Result<Vec<u8>, Error> {
        let name = reference_text("scm_file_open", name)?;
        let mut file = 0;
        // SAFETY: a live object, a NUL-terminated text and a valid out-pointer.
        check("scm_file_open", unsafe { scm_file_open(self.0, kind, name.as_ptr(), &mut file) })?;
        let mut content = Vec::new();
        // Room for a record of any length (at most 65535 bytes), and for a transparent file
        // more than one call reads at once.
        let mut chunk = vec![0u8; 65536];
        let read = loop {
            let mut len = chunk.len();
            // SAFETY: a live object, an open file and `len` writable bytes.
            match unsafe { scm_file_read(self.0, file, chunk.as_mut_ptr(), &mut len, 0) } {
                SCM_SCARD_W_EOF => break Ok(()),
                hr if hr < 0 => break Err(Error { call: "scm_file_read", hr }),
                // 0 bytes is an empty record (a linear variable file's erased one), not the end:
                // the records after it follow. A record file ends by record 254, and a
                // transparent file's read at its end is SCM_SCARD_W_EOF, so this ends.
                _ => content.extend_from_slice(&chunk[..len]),
            }
        };
        // SAFETY: a live object and the file it opened. Closing sends nothing and cannot fail
        // for an open file.
        unsafe { scm_file_close(self.0, file) };
        read.map(|()| content)
    }
}

impl Drop for FileAccess {
    fn drop(&mut self) {
        // SAFETY: the object is ours and released once.
        unsafe { scm_file_access_release(self.0) };
    }
}

/// What the card said to a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    /// Wrong code; the tries left, `None` when the card does not say.
    Wrong(Option<u32>),
    Blocked,
}

/// A verification object, released on drop.
pub struct Chv(*mut scm_chv);

impl Chv {
    pub fn verify(&self, reference: u8, code: &[u8]) -> Result<Verdict, Error> {
        let mut tries = 0;
        // SAFETY: a live object, `code.len()` readable bytes and a valid out-pointer.
        let hr =
            unsafe { scm_chv_verify(self.0, reference.into(), code.as_ptr(), code.len(), 0, &mut tries) };
        match hr {
            SCM_SCARD_W_WRONG_CHV => Ok(Verdict::Wrong((tries != SCM_TRIES_UNKNOWN).then_some(tries))),
            SCM_SCARD_W_CHV_BLOCKED => Ok(Verdict::Blocked),
            _ => check("scm_chv_verify", hr).map(|()| Verdict::Verified),
        }
    }
}

impl Drop for Chv {
    fn drop(&mut self) {
        // SAFETY: the object is ours and released once; the card's security state is left.
        unsafe { scm_chv_release(self.0) };
    }
}

/// What [`Monitor::next`] saw.
pub enum Event {
    /// An `SCM_EVENT_*` and the reader's name.
    Change(u32, String),
    TimedOut,
    Cancelled,
}

/// A monitor of every reader, released on drop.
pub struct Monitor(*mut scm_monitor);

impl Monitor {
    pub fn create() -> Result<Monitor, Error> {
        let mut mon = ptr::null_mut();
        // SAFETY: a valid out-pointer.
        check("scm_monitor_create", unsafe { scm_monitor_create(&mut mon) })?;
        Ok(Monitor(mon))
    }

    /// The next event within `timeout_ms` (`SCM_WAIT_INFINITE`: no limit).
    pub fn next(&self, timeout_ms: u32) -> Result<Event, Error> {
        let mut name = vec![0u8; 256];
        loop {
            let (mut event, mut len) = (0, name.len());
            // SAFETY: a live monitor, valid out-pointers and `len` writable bytes.
            let hr = unsafe {
                scm_monitor_next(self.0, timeout_ms, &mut event, name.as_mut_ptr().cast(), &mut len)
            };
            match hr {
                // The event is kept for the next call: ask again with room for its name.
                SCM_SCARD_E_INSUFFICIENT_BUFFER => name.resize(len, 0),
                SCM_SCARD_E_TIMEOUT => return Ok(Event::TimedOut),
                SCM_SCARD_E_CANCELLED => return Ok(Event::Cancelled),
                _ => {
                    check("scm_monitor_next", hr)?;
                    // The length counts the NUL.
                    let reader = String::from_utf8_lossy(&name[..len.saturating_sub(1)]).into_owned();
                    return Ok(Event::Change(event, reader));
                }
            }
        }
    }

    /// Something another thread can end a [`next`](Self::next) in progress with.
    #[cfg(unix)] // Used by the signal thread, which is Unix only.
    pub fn canceller(&self) -> Canceller {
        Canceller(self.0 as usize)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        // SAFETY: the monitor is ours and released once.
        unsafe { scm_monitor_release(self.0) };
    }
}

/// A monitor's token, to cancel its wait from another thread. The token is checked by the
/// library: once the monitor is released, cancelling is a refused call, never a use after free.
#[cfg(unix)]
#[derive(Clone, Copy)]
pub struct Canceller(usize);

#[cfg(unix)]
impl Canceller {
    pub fn cancel(self) {
        // SAFETY: any token value is safe to pass; a dead one is refused with SCM_E_HANDLE.
        unsafe { scardmanage::scm_monitor_cancel(self.0 as *mut scm_monitor) };
    }
}

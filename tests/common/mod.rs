//! Test-side helpers over the C surface: a manager that releases itself, calls that return
//! `Result`, and raw PC/SC for the "another program" side. Each test binary uses a different
//! part of this module.
#![allow(dead_code)]

use std::ffi::{c_char, CString};
use std::ptr;
use std::time::Duration;

use pcsc::ffi;
use scardmanage::*;

pub const WAIT: Duration = Duration::from_secs(10);

/// Panics with the library's own message when a call fails.
#[track_caller]
pub fn ok(hr: scm_hresult) {
    assert_eq!(hr, SCM_S_OK, "{hr:#010x}: {}", message_of(hr));
}

pub fn message_of(hr: scm_hresult) -> String {
    // SAFETY: the library returns a static NUL-terminated text for any value.
    unsafe { std::ffi::CStr::from_ptr(scm_error_message(hr)) }.to_string_lossy().into_owned()
}

/// A manager released on drop.
pub struct Manager(pub *mut scm_manage);

// SAFETY: managers are tokens; the library serializes calls on one.
unsafe impl Send for Manager {}
unsafe impl Sync for Manager {}

impl Manager {
    pub fn new() -> Manager {
        let mut m = ptr::null_mut();
        ok(unsafe { scm_create(&mut m) });
        assert!(!m.is_null());
        Manager(m)
    }

    pub fn attached(reader: &str) -> Manager {
        let manager = Manager::new();
        ok(manager.attach(reader));
        manager
    }

    /// A manager attached to a handle the test owns (borrowed, never disconnected by it).
    pub fn borrowing(owner: &RawConnection) -> Manager {
        let manager = Manager::new();
        ok(unsafe { scm_attach_by_handle(manager.0, owner.handle as scm_hscard) });
        manager
    }

    pub fn attach(&self, reader: &str) -> scm_hresult {
        let name = CString::new(reader).unwrap();
        unsafe { scm_attach_by_ifd(self.0, name.as_ptr()) }
    }

    pub fn status(&self) -> Result<(u32, u32), scm_hresult> {
        let (mut state, mut protocol) = (0xEEEE, 0xEEEE);
        match unsafe { scm_status(self.0, &mut state, &mut protocol) } {
            SCM_S_OK => Ok((state, protocol)),
            hr => {
                assert_eq!((state, protocol), (0xEEEE, 0xEEEE), "outputs written on failure");
                Err(hr)
            }
        }
    }

    pub fn transmit(&self, command: &[u8]) -> Result<Vec<u8>, scm_hresult> {
        let mut response = vec![0u8; SCM_MAX_APDU_SIZE];
        let mut len = response.len();
        match unsafe {
            scm_transmit(self.0, command.as_ptr(), command.len(), response.as_mut_ptr(), &mut len)
        } {
            SCM_S_OK => {
                response.truncate(len);
                Ok(response)
            }
            hr => Err(hr),
        }
    }

    pub fn atr(&self) -> Result<Vec<u8>, scm_hresult> {
        let mut atr = [0u8; 64];
        let mut len = atr.len();
        match unsafe { scm_get_atr(self.0, atr.as_mut_ptr(), &mut len) } {
            SCM_S_OK => Ok(atr[..len].to_vec()),
            hr => Err(hr),
        }
    }

    pub fn reader_name(&self) -> Result<String, scm_hresult> {
        let mut name = [0 as c_char; 256];
        let mut len = name.len();
        match unsafe { scm_get_reader_name(self.0, name.as_mut_ptr(), &mut len) } {
            SCM_S_OK => {
                let bytes: Vec<u8> = name[..len].iter().map(|c| u8::from_ne_bytes(c.to_ne_bytes())).collect();
                assert_eq!(bytes.last(), Some(&0), "NUL counted in the length");
                Ok(String::from_utf8(bytes[..len - 1].to_vec()).unwrap())
            }
            hr => Err(hr),
        }
    }

    pub fn handle(&self) -> Result<scm_hscard, scm_hresult> {
        let mut handle = 0;
        match unsafe { scm_get_handle(self.0, &mut handle) } {
            SCM_S_OK => Ok(handle),
            hr => Err(hr),
        }
    }

    pub fn reconnect(&self) -> scm_hresult {
        unsafe { scm_reconnect(self.0) }
    }

    pub fn lock(&self) -> scm_hresult {
        unsafe { scm_lock(self.0) }
    }

    pub fn unlock(&self, disposition: u32) -> scm_hresult {
        unsafe { scm_unlock(self.0, disposition) }
    }

    pub fn detach(&self) -> scm_hresult {
        unsafe { scm_detach(self.0) }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let hr = unsafe { scm_release(self.0) };
        // A test may have released it already, on purpose.
        assert!(hr == SCM_S_OK || hr == SCM_E_HANDLE, "release: {hr:#x}");
    }
}

/// ECHO in the lab's default applet.
pub fn echo_apdu(data: &[u8]) -> Vec<u8> {
    let mut apdu = vec![0x80, 0x10, 0x00, 0x00, data.len() as u8];
    apdu.extend_from_slice(data);
    apdu
}

pub fn echo_ok(manager: &Manager, data: &[u8]) {
    let mut expected = data.to_vec();
    expected.extend_from_slice(&[0x90, 0x00]);
    assert_eq!(manager.transmit(&echo_apdu(data)), Ok(expected));
}

/// The reader names `scm_list_readers` returns.
pub fn list_readers() -> Result<Vec<String>, scm_hresult> {
    let mut len = 0;
    let hr = unsafe { scm_list_readers(ptr::null_mut(), &mut len) };
    if hr != SCM_S_OK {
        return Err(hr);
    }
    let mut buf = vec![0 as c_char; len];
    let hr = unsafe { scm_list_readers(buf.as_mut_ptr(), &mut len) };
    if hr != SCM_S_OK {
        return Err(hr);
    }
    let bytes: Vec<u8> = buf[..len].iter().map(|c| u8::from_ne_bytes(c.to_ne_bytes())).collect();
    assert!(bytes.ends_with(&[0, 0]), "a multi-string ends with two NULs");
    Ok(bytes[..len - 2].split(|&b| b == 0).map(|n| String::from_utf8(n.to_vec()).unwrap()).collect())
}

/// Raw PC/SC, as another part of the program (or another program) would use it.
pub struct RawConnection {
    pub context: ffi::SCARDCONTEXT,
    pub handle: ffi::SCARDHANDLE,
    pub protocol: ffi::DWORD,
}

impl RawConnection {
    pub fn connect(reader: &str, share_mode: ffi::DWORD) -> Result<RawConnection, scm_hresult> {
        let name = CString::new(reader).unwrap();
        let mut context = 0;
        let rv = unsafe {
            ffi::SCardEstablishContext(ffi::SCARD_SCOPE_USER, ptr::null(), ptr::null(), &mut context)
        };
        if rv != 0 {
            return Err(rv as u32 as i32);
        }
        let (mut handle, mut protocol) = (0, 0);
        let rv = unsafe {
            ffi::SCardConnect(
                context,
                name.as_ptr(),
                share_mode,
                ffi::SCARD_PROTOCOL_ANY,
                &mut handle,
                &mut protocol,
            )
        };
        if rv != 0 {
            unsafe { ffi::SCardReleaseContext(context) };
            return Err(rv as u32 as i32);
        }
        Ok(RawConnection { context, handle, protocol })
    }

    pub fn transmit(&self, command: &[u8]) -> Result<Vec<u8>, scm_hresult> {
        let mut response = vec![0u8; 512];
        let mut len = response.len() as ffi::DWORD;
        let pci = unsafe { &ffi::g_rgSCardT1Pci };
        let rv = unsafe {
            ffi::SCardTransmit(
                self.handle,
                pci,
                command.as_ptr(),
                command.len() as ffi::DWORD,
                ptr::null_mut(),
                response.as_mut_ptr(),
                &mut len,
            )
        };
        if rv != 0 {
            return Err(rv as u32 as i32);
        }
        response.truncate(len as usize);
        Ok(response)
    }

    /// Resets the card through this connection, as another program would.
    pub fn reset_card(&self) -> Result<(), scm_hresult> {
        self.reconnect(ffi::SCARD_SHARE_SHARED, ffi::SCARD_RESET_CARD)
    }

    /// `SCardReconnect` of this connection, with T0|T1.
    pub fn reconnect(&self, share_mode: ffi::DWORD, disposition: ffi::DWORD) -> Result<(), scm_hresult> {
        let mut protocol = 0;
        let rv = unsafe {
            ffi::SCardReconnect(self.handle, share_mode, ffi::SCARD_PROTOCOL_ANY, disposition, &mut protocol)
        };
        if rv != 0 {
            return Err(rv as u32 as i32);
        }
        Ok(())
    }
}

impl Drop for RawConnection {
    fn drop(&mut self) {
        unsafe {
            ffi::SCardDisconnect(self.handle, ffi::SCARD_LEAVE_CARD);
            ffi::SCardReleaseContext(self.context);
        }
    }
}

/// Leases a reader with the default card inserted and seen by pcscd.
pub fn lease_with_card() -> scardmanage_lab::ReaderLease {
    let lease = scardmanage_lab::lease();
    lease.insert();
    assert!(scardmanage_lab::wait_card(lease.name(), true, WAIT), "card seen in {}", lease.name());
    lease
}

/// A run-size knob: the environment variable `name` if set, else `stress` under `SCM_STRESS=1`
/// (`bash .ci/stress`), else `short` (the default test command).
pub fn count(name: &str, short: usize, stress: usize) -> usize {
    if let Some(value) = std::env::var(name).ok().and_then(|v| v.parse().ok()) {
        return value;
    }
    if std::env::var("SCM_STRESS").is_ok_and(|v| v == "1") {
        stress
    } else {
        short
    }
}

/// An upper time bound that a document states, as a test asserts it: times `SCM_BOUND_FACTOR`
/// (default 1). `.ci/test-reliability` sets it to 10 for its runs under valgrind, which slows
/// the test process many times over; `cargo test` asserts the documents' bounds as they are.
pub fn bound(documented: Duration) -> Duration {
    match std::env::var("SCM_BOUND_FACTOR") {
        Ok(factor) => documented * factor.parse::<u32>().expect("SCM_BOUND_FACTOR is a whole number"),
        Err(_) => documented,
    }
}

/// A small seeded generator (xorshift64*): random sequences that a printed seed reproduces.
pub struct Xorshift(pub u64);

impl Xorshift {
    /// From `SCM_SEED` if set, else from the clock; the seed is printed so a failure can be
    /// replayed with `SCM_SEED=<seed>`.
    pub fn from_env(what: &str) -> Xorshift {
        let seed = std::env::var("SCM_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        eprintln!("{what}: seed {seed} (replay with SCM_SEED={seed})");
        Xorshift(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The functions of the ABI, for checking that a result is one the header documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Func {
    Create,
    Release,
    Attach,
    Reconnect,
    Detach,
    Lock,
    Unlock,
    Status,
    Transmit,
    GetAtr,
    GetReaderName,
    GetHandle,
    ListReaders,
}

/// A PC/SC code passed through (`SCARD_E_*`, `SCARD_W_*`, `SCARD_F_*`).
pub fn is_pcsc_code(hr: scm_hresult) -> bool {
    (hr as u32) & 0xFFFF_0000 == 0x8010_0000
}

/// The service is gone (stopped, killed, restarting): what any call that reaches PC/SC may get.
const SERVICE_LOST: [scm_hresult; 3] =
    [SCM_SCARD_E_NO_SERVICE, SCM_SCARD_E_SERVICE_STOPPED, SCM_SCARD_F_COMM_ERROR];

/// No card, or the card changed under the connection: what any card call may get.
const CARD_CHANGED: [scm_hresult; 5] = [
    SCM_SCARD_E_NO_SMARTCARD,
    SCM_SCARD_W_REMOVED_CARD,
    SCM_SCARD_W_RESET_CARD,
    SCM_SCARD_W_UNPOWERED_CARD,
    SCM_SCARD_W_UNRESPONSIVE_CARD,
];

/// The PC/SC codes a function may pass through beyond `SERVICE_LOST` (and `CARD_CHANGED` for
/// card calls), as pcsc-lite 1.9.9 gives them: the header names the common ones and says
/// "other PC/SC codes"; these lists (RELIABILITY.md, "The documented codes") are the others.
fn pcsc_codes(func: Func) -> (bool, &'static [scm_hresult]) {
    use Func::*;
    match func {
        Create | Release | GetHandle => (false, &[]),
        Attach => (
            false,
            &[
                SCM_SCARD_E_UNKNOWN_READER,
                SCM_SCARD_E_SHARING_VIOLATION,
                SCM_SCARD_E_PROTO_MISMATCH,
                SCM_SCARD_W_UNPOWERED_CARD,
                SCM_SCARD_W_UNRESPONSIVE_CARD,
                SCM_SCARD_E_READER_UNAVAILABLE,
            ],
        ),
        Reconnect => (
            true,
            &[
                SCM_SCARD_E_UNKNOWN_READER,
                SCM_SCARD_E_SHARING_VIOLATION,
                SCM_SCARD_E_PROTO_MISMATCH,
                SCM_SCARD_E_READER_UNAVAILABLE,
            ],
        ),
        // A borrowed handle's lock is ended on detach, so its answer may be unlock's.
        Detach => (true, &[SCM_SCARD_E_NOT_TRANSACTED]),
        Lock | Status => (true, &[]),
        // pcsc-lite cannot eject: E_UNEXPECTED (the lock ends all the same).
        Unlock => (true, &[SCM_SCARD_E_NOT_TRANSACTED, SCM_SCARD_E_UNEXPECTED]),
        // A card that vanished mid-APDU, a card switched to RAW by another connection, and a
        // transmit in flight when pcscd died.
        Transmit => (
            true,
            &[
                SCM_SCARD_E_INSUFFICIENT_BUFFER,
                SCM_SCARD_E_NOT_TRANSACTED,
                SCM_SCARD_E_PROTO_MISMATCH,
                SCM_SCARD_W_SECURITY_VIOLATION,
            ],
        ),
        GetAtr | GetReaderName => (true, &[SCM_SCARD_E_INSUFFICIENT_BUFFER]),
        ListReaders => (false, &[SCM_SCARD_E_INSUFFICIENT_BUFFER, SCM_SCARD_E_NO_READERS_AVAILABLE]),
    }
}

/// True when `hr` is a result the header documents for `func`, the PC/SC codes limited to the
/// named sets above. Panics caught at the boundary (`SCM_E_UNEXPECTED`) are never expected.
pub fn documented(func: Func, hr: scm_hresult) -> bool {
    use Func::*;
    let own: &[scm_hresult] = match func {
        Create => &[SCM_E_POINTER, SCM_E_OUTOFMEMORY],
        Release => &[SCM_E_POINTER, SCM_E_HANDLE],
        GetHandle => &[SCM_E_POINTER, SCM_E_HANDLE, SCM_E_NOT_ATTACHED, SCM_SCARD_E_NO_SMARTCARD],
        ListReaders => &[SCM_E_POINTER],
        _ => &[SCM_E_POINTER, SCM_E_HANDLE, SCM_E_NOT_ATTACHED, SCM_E_INVALIDARG],
    };
    let (card_call, pcsc) = pcsc_codes(func);
    let reaches_pcsc = !matches!(func, Create | Release | GetHandle);
    hr == SCM_S_OK
        || own.contains(&hr)
        || pcsc.contains(&hr)
        || (reaches_pcsc && SERVICE_LOST.contains(&hr))
        || (card_call && CARD_CHANGED.contains(&hr))
}

/// How often each function returned each code, across threads.
#[derive(Default)]
pub struct Tally(std::sync::Mutex<std::collections::BTreeMap<(Func, u32), u64>>);

impl Tally {
    /// Records a result, failing the test on an undocumented one.
    #[track_caller]
    pub fn record(&self, func: Func, hr: scm_hresult) -> scm_hresult {
        assert!(documented(func, hr), "{func:?} returned an undocumented {hr:#010x} ({})", message_of(hr));
        *self.0.lock().unwrap().entry((func, hr as u32)).or_default() += 1;
        hr
    }

    pub fn get(&self, func: Func, hr: scm_hresult) -> u64 {
        self.0.lock().unwrap().get(&(func, hr as u32)).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.lock().unwrap().values().sum()
    }

    /// One line per (function, code), for the test's output and RELIABILITY.md.
    pub fn print(&self, title: &str) {
        eprintln!("{title}: {} calls", self.total());
        for ((func, hr), n) in self.0.lock().unwrap().iter() {
            eprintln!("  {func:?} -> {hr:#010x} ({}) x{n}", message_of(*hr as i32));
        }
    }
}

/// Runs `f` on a thread of its own and fails if it takes longer than `bound`: a hang becomes
/// a failure instead of a stuck test run.
#[track_caller]
pub fn within<T: Send + 'static>(bound: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(bound) {
        Ok(value) => {
            worker.join().unwrap();
            value
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The closure panicked: re-raise its panic here.
            std::panic::resume_unwind(worker.join().unwrap_err())
        }
        Err(_) => panic!("{what}: still running after {bound:?} (a hang)"),
    }
}

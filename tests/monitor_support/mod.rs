//! A monitor over the C surface for the monitor tests: released on drop, events as values.
#![allow(dead_code)]

use std::ffi::c_char;
use std::ptr;
use std::time::{Duration, Instant};

use scardmanage::*;

/// How long a cancel or a release may take to end a blocked `next` on a loaded 2-core machine
/// (measured: a few milliseconds).
pub const PROMPT: Duration = Duration::from_secs(1);

/// The CPU time the calling thread has used so far (user and system).
pub fn thread_cpu_time() -> Duration {
    let mut used = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut used) }, 0);
    Duration::new(used.tv_sec as u64, used.tv_nsec as u32)
}

/// The interval `SCM_READER_POLL_MS` sets for this run, when it does (the second run of the
/// monitor tests).
pub fn poll_interval() -> Option<Duration> {
    let ms: u64 = std::env::var("SCM_READER_POLL_MS").ok()?.trim().parse().ok()?;
    (ms > 0).then(|| Duration::from_millis(ms))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: u32,
    pub reader: String,
}

pub fn added(reader: &str) -> Event {
    Event { kind: SCM_EVENT_READER_ADDED, reader: reader.into() }
}
pub fn removed(reader: &str) -> Event {
    Event { kind: SCM_EVENT_READER_REMOVED, reader: reader.into() }
}
pub fn inserted(reader: &str) -> Event {
    Event { kind: SCM_EVENT_CARD_INSERTED, reader: reader.into() }
}
pub fn pulled(reader: &str) -> Event {
    Event { kind: SCM_EVENT_CARD_REMOVED, reader: reader.into() }
}

/// `scm_monitor_next` on a bare token, the event alone (no name): for a thread that does not own
/// the monitor, which another thread may release meanwhile.
pub fn next_on_token(token: usize, timeout_ms: u32) -> scm_hresult {
    let mut event = 0;
    // SAFETY: the token is checked by the library; released meanwhile, it is refused.
    unsafe {
        scm_monitor_next(token as *mut scm_monitor, timeout_ms, &mut event, ptr::null_mut(), ptr::null_mut())
    }
}

/// A monitor released on drop (unless released by the test).
pub struct Monitor(pub *mut scm_monitor);

// SAFETY: a monitor is a token; the library makes its calls thread-safe.
unsafe impl Send for Monitor {}
unsafe impl Sync for Monitor {}

impl Monitor {
    pub fn new() -> Monitor {
        let mut mon = ptr::null_mut();
        // SAFETY: a valid out-pointer.
        let hr = unsafe { scm_monitor_create(&mut mon) };
        assert_eq!(hr, SCM_S_OK);
        assert!(!mon.is_null());
        Monitor(mon)
    }

    /// The raw call with a buffer of `capacity` bytes.
    pub fn next_raw(&self, timeout_ms: u32, capacity: usize) -> (scm_hresult, u32, Vec<u8>, usize) {
        let mut event = 0xEEEE;
        let mut name = vec![0xAAu8; capacity];
        let mut len = capacity;
        // SAFETY: `name` holds `len` writable bytes.
        let hr = unsafe {
            scm_monitor_next(self.0, timeout_ms, &mut event, name.as_mut_ptr().cast::<c_char>(), &mut len)
        };
        (hr, event, name, len)
    }

    pub fn next(&self, timeout_ms: u32) -> Result<Event, scm_hresult> {
        match self.next_raw(timeout_ms, 256) {
            (SCM_S_OK, kind, name, len) => {
                assert!(len >= 1 && name[len - 1] == 0, "the name is NUL-terminated within the length");
                Ok(Event { kind, reader: String::from_utf8_lossy(&name[..len - 1]).into_owned() })
            }
            (hr, kind, _, _) => {
                assert_eq!(kind, 0xEEEE, "no event written on failure");
                Err(hr)
            }
        }
    }

    /// Every event available now (the initial state on a fresh monitor).
    pub fn drain(&self) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            match self.next(0) {
                Ok(event) => events.push(event),
                Err(SCM_SCARD_E_TIMEOUT) => return events,
                Err(hr) => panic!("next: {hr:#010x}"),
            }
        }
    }

    /// Events until one matches `wanted` (which is returned last), or panics after `timeout`.
    /// Events of readers not in `readers` are skipped (parallel tests use the other readers).
    pub fn until(&self, readers: &[&str], wanted: &Event, timeout: Duration) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left.as_millis() as u32) {
                Ok(event) if readers.contains(&event.reader.as_str()) => {
                    seen.push(event.clone());
                    if &event == wanted {
                        return seen;
                    }
                }
                Ok(_) => {}
                Err(hr) => panic!("waiting for {wanted:?}: {hr:#010x} after {seen:?}"),
            }
        }
    }

    pub fn cancel(&self) -> scm_hresult {
        // SAFETY: a token, checked by the library.
        unsafe { scm_monitor_cancel(self.0) }
    }

    pub fn release(&mut self) -> scm_hresult {
        // SAFETY: a token, checked by the library.
        let hr = unsafe { scm_monitor_release(self.0) };
        self.0 = ptr::null_mut();
        hr
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a token, checked by the library.
            unsafe { scm_monitor_release(self.0) };
        }
    }
}

//! Signals handled on a thread of their own, so that what runs on them may take locks and
//! call the library (a signal handler may do neither).

use std::io;
use std::mem::MaybeUninit;
use std::thread;

/// Runs `action` with the signal's number on a thread of its own each time one of `signals`
/// arrives, instead of its default (for SIGINT and SIGTERM, ending the process on the spot).
///
/// Call it before the process starts any other thread: the signals are blocked in the calling
/// thread, and threads inherit that mask, so the one thread left to receive them is this one.
pub fn handle(signals: &[libc::c_int], action: impl Fn(libc::c_int) + Send + 'static) -> io::Result<()> {
    // SAFETY: a zeroed sigset_t is a valid argument for sigemptyset, which fills it in.
    let mut set = unsafe { MaybeUninit::<libc::sigset_t>::zeroed().assume_init() };
    // SAFETY: `set` is a valid sigset_t; the signal numbers are valid.
    let blocked = unsafe {
        libc::sigemptyset(&mut set);
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
    };
    if blocked != 0 {
        return Err(io::Error::from_raw_os_error(blocked));
    }
    thread::Builder::new().name("scm-signals".into()).spawn(move || loop {
        let mut signal = 0;
        // SAFETY: `set` is a valid, filled sigset_t blocked in every thread of the process.
        if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
            action(signal);
        }
    })?;
    Ok(())
}

//! The process-wide lab and the reader pool parallel tests draw from.

use crate::card::VirtualCard;
use crate::daemon::{Lab, Reader, MAX_PAIRS};
use pcsc::{Context, ReaderState, Scope, State};
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a returned lease waits for pcscd to see its reader empty before handing it on.
const RETURN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts while the daemon is unreachable (killed, restarting).
const RETRY_DELAY: Duration = Duration::from_millis(20);
/// How long a returned reader rests before its next lease: longer than one presence poll of
/// pcscd (400 ms), so the daemon's poller has surely seen the reader empty. See [`wait_card`]
/// for why "shows empty" alone is not enough.
const SETTLE: Duration = Duration::from_millis(500);

/// A reader's place in the pool.
#[derive(Debug, Clone, Copy)]
struct Slot {
    leased: bool,
    /// Not to be handed out before this instant.
    ready_at: Instant,
}

/// The process-wide lab returned by [`shared`]: a [`Lab`] behind a lock, plus the pool of its
/// readers.
///
/// Names, ports and the socket path never change across [`restart`](Self::restart), so they
/// are available without locking.
#[derive(Debug)]
pub struct SharedLab {
    lab: Mutex<Lab>,
    socket: PathBuf,
    readers: Vec<Reader>,
    pool: Mutex<Vec<Slot>>,
    returned: Condvar,
}

impl SharedLab {
    /// The daemon's socket, already exported as `PCSCLITE_CSOCK_NAME`.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// All 16 readers, leased or not.
    pub fn readers(&self) -> &[Reader] {
        &self.readers
    }

    /// SIGKILLs the daemon (see [`Lab::kill`]). Every test of the process is affected, so a
    /// test doing this belongs in a test binary of its own.
    pub fn kill(&self) {
        self.lock_lab().kill();
    }

    /// Restarts the daemon with the same readers (see [`Lab::restart`]).
    pub fn restart(&self) -> io::Result<()> {
        self.lock_lab().restart()
    }

    /// The last lines of the daemon's output.
    pub fn log_tail(&self) -> String {
        self.lock_lab().log_tail()
    }

    fn lock_lab(&self) -> MutexGuard<'_, Lab> {
        self.lab.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_pool(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The process-wide lab: 8 pairs (16 readers), started on first use.
///
/// `PCSCLITE_CSOCK_NAME` is set in this process's environment before this returns for the first
/// time. libpcsclite reads the variable once, at the process's first PC/SC call, so call this
/// before anything touches PC/SC (tests: at the top of every test). The daemon dies with the
/// process.
///
/// # Panics
///
/// When the lab cannot start (not root, packages missing, ...), with the start error; later
/// calls panic with the same message.
pub fn shared() -> &'static SharedLab {
    static SHARED: OnceLock<Result<SharedLab, String>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        let lab = Lab::start(MAX_PAIRS).map_err(|e| e.to_string())?;
        let socket = lab.socket_path();
        // Set while no PC/SC call can have been made through this crate yet.
        std::env::set_var(crate::SOCKET_ENV, &socket);
        let readers = lab.readers().to_vec();
        Ok(SharedLab {
            pool: Mutex::new(vec![Slot { leased: false, ready_at: Instant::now() }; readers.len()]),
            lab: Mutex::new(lab),
            socket,
            readers,
            returned: Condvar::new(),
        })
    });
    match shared {
        Ok(lab) => {
            remove_dir_at_exit(lab);
            lab
        }
        Err(e) => panic!("cannot start the shared PC/SC lab: {e}"),
    }
}

/// Statics are never dropped: remove the shared lab's temp dir at exit instead. (The daemon
/// itself dies with the process; see the spawner in `daemon.rs`.)
fn remove_dir_at_exit(lab: &'static SharedLab) {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn cleanup() {
        if let Some(dir) = DIR.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    REGISTERED.get_or_init(|| {
        let _ = DIR.set(lab.lock_lab().dir().to_path_buf());
        // SAFETY: `cleanup` is a plain extern "C" function that does not unwind.
        unsafe {
            libc::atexit(cleanup);
        }
    });
}

/// Exclusive use of one reader of the shared lab, with a card for it.
///
/// On drop the card is removed, pcscd is given time to see the reader empty, and the reader
/// goes back to the pool, so the next test starts from an empty reader.
#[derive(Debug)]
pub struct ReaderLease {
    index: usize,
    reader: Reader,
    card: VirtualCard,
}

impl ReaderLease {
    /// The PC/SC reader name.
    pub fn name(&self) -> &str {
        &self.reader.name
    }

    /// The reader's vpcd port.
    pub fn port(&self) -> u16 {
        self.reader.port
    }

    /// The lease's card; not inserted until [`VirtualCard::insert`] with [`port`](Self::port)
    /// (or [`insert`](Self::insert)).
    pub fn card(&self) -> &VirtualCard {
        &self.card
    }

    /// Inserts the lease's card into the leased reader.
    pub fn insert(&self) {
        self.card.insert(self.reader.port);
    }
}

impl Drop for ReaderLease {
    fn drop(&mut self) {
        self.card.remove();
        if !wait_card(&self.reader.name, false, RETURN_TIMEOUT) {
            eprintln!(
                "scardmanage-lab: reader {:?} still not empty {} s after its card was removed",
                self.reader.name,
                RETURN_TIMEOUT.as_secs()
            );
        }
        let lab = shared();
        lab.lock_pool()[self.index] = Slot { leased: false, ready_at: Instant::now() + SETTLE };
        lab.returned.notify_one();
    }
}

/// Leases a free reader of the shared lab with a default-applet card (not inserted), blocking
/// until one is free. Tests of one process run in parallel and must never share a reader.
///
/// Of the free readers, the one returned longest ago is chosen, and a reader returned less
/// than 0.5 s ago is handed out only after that rest.
pub fn lease() -> ReaderLease {
    lease_with(VirtualCard::with_default_applet())
}

/// Like [`lease`], with a card of the caller's choosing. Giving the card to the lease means it
/// is removed before the lease waits for the reader to go empty, whatever the drop order.
pub fn lease_with(card: VirtualCard) -> ReaderLease {
    let lab = shared();
    let mut pool = lab.lock_pool();
    let index = loop {
        let free = (0..pool.len()).filter(|&i| !pool[i].leased).min_by_key(|&i| pool[i].ready_at);
        if let Some(free) = free {
            break free;
        }
        pool = lab.returned.wait(pool).unwrap_or_else(PoisonError::into_inner);
    };
    pool[index].leased = true;
    let ready_at = pool[index].ready_at;
    drop(pool);
    thread::sleep(ready_at.saturating_duration_since(Instant::now()));
    ReaderLease { index, reader: lab.readers[index].clone(), card }
}

/// Waits until `reader` shows a card present (`present = true`) or shows empty (`false`).
/// Returns `false` on timeout.
///
/// pcscd polls card presence about every 400 ms, so an insertion or removal shows up with
/// that much delay.
///
/// "Empty" can be reported before pcscd's own poller has noticed the removal: when a card is
/// pulled while connected and the handle is then disconnected with a reset (the `pcsc` crate's
/// default), the failed reset marks the reader empty at once. A card inserted before the
/// poller's next round is then never powered up, since the poller saw no change. After such a
/// pull, wait about 0.5 s before inserting another card in the same reader ([`lease`] does).
///
/// This uses `SCardGetStatusChange` on a context of this process, so the
/// process must already point at the right daemon ([`shared`] or `PCSCLITE_CSOCK_NAME`). A new
/// context is established per call and after errors, so it also works across daemon restarts.
pub fn wait_card(reader: &str, present: bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let Ok(name) = CString::new(reader) else {
        return false;
    };
    let wanted = if present { State::PRESENT } else { State::EMPTY };
    while Instant::now() < deadline {
        let Ok(context) = Context::establish(Scope::User) else {
            thread::sleep(RETRY_DELAY);
            continue;
        };
        let mut states = [ReaderState::new(name.clone(), State::UNAWARE)];
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match context.get_status_change(remaining, &mut states) {
                Ok(()) if states[0].event_state().contains(wanted) => return true,
                Ok(()) if states[0].event_state().contains(State::UNKNOWN) => {
                    // Not (yet) a reader of this daemon, e.g. during a restart.
                    thread::sleep(RETRY_DELAY);
                    break;
                }
                Ok(()) => states[0].sync_current_state(),
                Err(pcsc::Error::Timeout) => return false,
                Err(_) => {
                    thread::sleep(RETRY_DELAY);
                    break;
                }
            }
        }
    }
    false
}

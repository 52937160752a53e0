//! The card side of a `vpcd` reader.
//!
//! A `vpcd` reader listens on a TCP port; the card is whatever connects to it. Every message
//! either way is a 2-byte big-endian length and that many bytes. From the reader: `00` power
//! off, `01` power on, `02` reset (none answered), `04` "send your ATR", and anything longer
//! is a command APDU whose answer is the response APDU.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long the card waits between attempts to reach its reader. Short, so that a restarted
/// daemon finds its cards again within one of its own presence polls (about 400 ms).
const RECONNECT_DELAY: Duration = Duration::from_millis(20);

/// What a virtual card does with a command APDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Answer with this response APDU (status word included).
    Respond(Vec<u8>),
    /// Close the connection without answering: the card is pulled mid-exchange, and the
    /// transmit fails (`SCARD_E_NOT_TRANSACTED` with pcsc-lite 1.9.9). The card then counts as
    /// removed. Before inserting another card in that reader, see [`crate::wait_card`].
    Vanish,
}

/// What a card has seen, for assertions on what the library under test made the reader do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Power-on messages (`01`).
    pub power_on: u64,
    /// Power-off messages (`00`).
    pub power_off: u64,
    /// Reset messages (`02`).
    pub resets: u64,
    /// ATR requests (`04`).
    pub atr_requests: u64,
    /// Command APDUs, including one answered with [`Reply::Vanish`].
    pub apdus: u64,
    /// Connections made to the reader: 1 per insertion, plus 1 per reconnection after the
    /// daemon went away and came back.
    pub connections: u64,
}

type Handler = dyn Fn(&[u8]) -> Reply + Send + Sync;
type PowerHook = dyn Fn() + Send + Sync;

/// What the serving thread needs: immutable behaviour plus counters.
struct Core {
    atr: Vec<u8>,
    handler: Box<Handler>,
    /// Called on every power-off, power-on and reset message.
    on_power: Box<PowerHook>,
    power_on: AtomicU64,
    power_off: AtomicU64,
    resets: AtomicU64,
    atr_requests: AtomicU64,
    apdus: AtomicU64,
    connections: AtomicU64,
}

/// The link between one insertion's thread and `remove()`.
#[derive(Default)]
struct Control {
    /// Set by `remove()`: the thread must stop instead of reconnecting.
    stop: AtomicBool,
    /// Set by the thread when it ends on its own (the card vanished).
    ended: AtomicBool,
    /// A clone of the live connection, so `remove()` can shut it down and wake a blocked read.
    connection: Mutex<Option<TcpStream>>,
}

struct Insertion {
    control: Arc<Control>,
    thread: JoinHandle<()>,
}

/// Owned by the `VirtualCard` clones only; its drop removes the card. The serving thread holds
/// `Core` and `Control` but never this, so the last clone going away really ends the card.
struct Handle {
    core: Arc<Core>,
    insertion: Mutex<Option<Insertion>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A `vpcd` card: a TCP client of the reader's port. Connected = inserted, closed = removed.
///
/// Cloning is cheap and every clone is the same card; it is removed when the last clone goes.
#[derive(Clone)]
pub struct VirtualCard {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for VirtualCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualCard")
            .field("atr", &self.handle.core.atr)
            .field("inserted", &self.is_inserted())
            .field("counters", &self.counters())
            .finish()
    }
}

impl VirtualCard {
    /// A card answering `atr` to ATR requests and `handler(apdu)` to every command APDU.
    ///
    /// The handler runs on the card's own thread, one APDU at a time.
    pub fn new(atr: Vec<u8>, handler: impl Fn(&[u8]) -> Reply + Send + Sync + 'static) -> VirtualCard {
        VirtualCard::with_power_hook(atr, handler, || {})
    }

    /// Like [`new`](Self::new), and `on_power()` runs (on the card's thread) at every power-off,
    /// power-on and reset the reader sends: where a card clears what it keeps only while
    /// powered (verified PINs, the current file).
    pub fn with_power_hook(
        atr: Vec<u8>,
        handler: impl Fn(&[u8]) -> Reply + Send + Sync + 'static,
        on_power: impl Fn() + Send + Sync + 'static,
    ) -> VirtualCard {
        let core = Core {
            atr,
            handler: Box::new(handler),
            on_power: Box::new(on_power),
            power_on: AtomicU64::new(0),
            power_off: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            atr_requests: AtomicU64::new(0),
            apdus: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        };
        VirtualCard { handle: Arc::new(Handle { core: Arc::new(core), insertion: Mutex::new(None) }) }
    }

    /// A card with [`crate::DEFAULT_ATR`] running [`crate::default_applet`].
    pub fn with_default_applet() -> VirtualCard {
        VirtualCard::new(crate::DEFAULT_ATR.to_vec(), crate::default_applet)
    }

    /// Inserts the card into the `vpcd` reader listening on `127.0.0.1:port`.
    ///
    /// Returns at once: a background thread connects and serves. While the card stays
    /// inserted, a connection dropped by the reader side (daemon killed or restarted) is
    /// retried every ~20 ms, like a card that stays in a reader across a daemon restart.
    /// pcscd polls for cards, so the daemon sees the card a few hundred ms later; use
    /// [`crate::wait_card`]. A card already inserted is removed first.
    pub fn insert(&self, port: u16) {
        self.remove();
        let control = Arc::new(Control::default());
        let core = Arc::clone(&self.handle.core);
        let thread_control = Arc::clone(&control);
        let thread = thread::Builder::new()
            .name(format!("vpcd-card-{port}"))
            .spawn(move || run(&core, &thread_control, port))
            .expect("spawning a virtual card thread");
        *lock(&self.handle.insertion) = Some(Insertion { control, thread });
    }

    /// Removes the card: shuts the connection down both ways and stops its thread.
    /// Idempotent. The daemon notices at its next presence poll.
    pub fn remove(&self) {
        self.handle.remove();
    }

    /// True from [`insert`](Self::insert) until [`remove`](Self::remove) or a
    /// [`Reply::Vanish`], whether or not the reader is reachable at the moment.
    pub fn is_inserted(&self) -> bool {
        lock(&self.handle.insertion).as_ref().is_some_and(|i| !i.control.ended.load(Ordering::SeqCst))
    }

    /// A snapshot of what the card has seen since it was created.
    pub fn counters(&self) -> Counters {
        let c = &self.handle.core;
        Counters {
            power_on: c.power_on.load(Ordering::SeqCst),
            power_off: c.power_off.load(Ordering::SeqCst),
            resets: c.resets.load(Ordering::SeqCst),
            atr_requests: c.atr_requests.load(Ordering::SeqCst),
            apdus: c.apdus.load(Ordering::SeqCst),
            connections: c.connections.load(Ordering::SeqCst),
        }
    }
}

impl Handle {
    fn remove(&self) {
        let Some(insertion) = lock(&self.insertion).take() else {
            return;
        };
        insertion.control.stop.store(true, Ordering::SeqCst);
        if let Some(connection) = lock(&insertion.control.connection).as_ref() {
            let _ = connection.shutdown(Shutdown::Both);
        }
        // The thread only ever blocks in a read (woken by the shutdown) or a short sleep.
        let _ = insertion.thread.join();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not make the card unusable for the rest of the test run.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a connection ended.
enum End {
    /// EOF or error: the reader went away, or `remove()` shut the connection down.
    Disconnected,
    /// The handler asked to vanish.
    Vanished,
}

/// The body of an insertion's thread: connect, serve, reconnect until stopped.
fn run(core: &Core, control: &Control, port: u16) {
    while !control.stop.load(Ordering::SeqCst) {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
            thread::sleep(RECONNECT_DELAY);
            continue;
        };
        tune(&stream);
        {
            let mut slot = lock(&control.connection);
            // Checked under the lock so a concurrent remove() either sees this connection to
            // shut down or has already set `stop`.
            if control.stop.load(Ordering::SeqCst) {
                break;
            }
            *slot = stream.try_clone().ok();
        }
        core.connections.fetch_add(1, Ordering::SeqCst);
        let vanished = matches!(serve(core, &stream), End::Vanished);
        if vanished {
            // Marked ended before the reader can see the card go: a caller whose transmit
            // failed because of it already finds the card out.
            control.ended.store(true, Ordering::SeqCst);
            vanish(&stream);
        }
        lock(&control.connection).take();
        drop(stream);
        if vanished {
            return;
        }
        thread::sleep(RECONNECT_DELAY);
    }
}

/// Serves one connection until it ends.
fn serve(core: &Core, mut stream: &TcpStream) -> End {
    loop {
        let mut header = [0u8; 2];
        if read_full(stream, &mut header).is_err() {
            return End::Disconnected;
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(header))];
        if read_full(stream, &mut message).is_err() {
            return End::Disconnected;
        }
        let answer = match message.as_slice() {
            [power @ 0x00..=0x02] => {
                let counter = [&core.power_off, &core.power_on, &core.resets][usize::from(*power)];
                counter.fetch_add(1, Ordering::SeqCst);
                (core.on_power)();
                None
            }
            [0x04] => {
                core.atr_requests.fetch_add(1, Ordering::SeqCst);
                Some(core.atr.clone())
            }
            [] | [_] => None,
            apdu => {
                // Counted before answering, so a caller whose transmit has returned sees it.
                core.apdus.fetch_add(1, Ordering::SeqCst);
                match (core.handler)(apdu) {
                    Reply::Respond(response) => Some(response),
                    Reply::Vanish => return End::Vanished,
                }
            }
        };
        if let Some(mut body) = answer {
            // vpcd's length prefix is 16 bits; a longer answer cannot be framed at all.
            body.truncate(usize::from(u16::MAX));
            let mut frame = Vec::with_capacity(body.len() + 2);
            frame.extend_from_slice(&(body.len() as u16).to_be_bytes());
            frame.extend_from_slice(&body);
            // One write for length and body: two small writes would meet Nagle's algorithm.
            if stream.write_all(&frame).is_err() {
                return End::Disconnected;
            }
        }
    }
}

/// Pulls the card in the middle of its answer: a length header promising a 2-byte response,
/// then a reset (the socket lingers 0) instead of the body.
///
/// A plain close would not fail anything: `vpcd` reads end-of-stream where it expects the
/// length as an empty response, and pcscd then reports a *successful* transmit of 0 bytes.
/// Only an error while `vpcd` waits for the promised body turns into a failed transmit. The
/// header is already in the reader's receive queue when the reset arrives, and Linux hands out
/// queued data before reporting the reset, so the outcome does not depend on timing.
fn vanish(mut stream: &TcpStream) {
    let _ = stream.write_all(&2u16.to_be_bytes());
}

/// Fills `buf`, re-arming TCP_QUICKACK before every read.
///
/// The driver writes the length and the body separately. Linux drops out of quick-ACK mode
/// on its own, after which the ACK for the first write is delayed (up to 40 ms) while the
/// driver's second write waits for it under Nagle: about 48 ms per APDU instead of ~80 µs.
fn read_full(mut stream: &TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        set_int_option(stream, libc::IPPROTO_TCP, libc::TCP_QUICKACK, 1);
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Socket options of a card connection.
///
/// `TCP_NODELAY` so our answers go out at once. `SO_LINGER` 0 so that closing sends a reset
/// instead of a FIN: neither side's port is left in TIME_WAIT, which would otherwise pile up
/// ephemeral ports across thousands of insertions and, when the daemon side closed first
/// (killed), keep the reader's port busy for a minute.
fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: the fd is open for the duration of the call and the option value is a properly
    // sized `linger`.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn set_int_option(stream: &TcpStream, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: the fd is open for the duration of the call and the option value is a c_int.
    // Failure only costs latency, so it is ignored.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

//! Test support for `scardmanage`: a real PC/SC stack on a machine without card readers.
//!
//! The tests, benchmarks and demos of this project run against a real `pcscd`, never against a
//! mock of PC/SC, because the behaviour worth testing (error codes, reset and removal races,
//! daemon restarts, latency) lives in the daemon. This crate provides:
//!
//! - [`Lab`]: a private `pcscd` in its own mount namespace with `2 * pairs` virtual readers
//!   served by the `vpcd` driver, so it never disturbs (or is disturbed by) a system daemon;
//! - [`VirtualCard`]: the card side of a `vpcd` reader, driven by a Rust closure;
//! - [`control::LabControl`]: a lab driven over a line protocol on TCP, as `scm-lab run` offers it
//!   to the programs it runs;
//! - [`bridge`] and [`wine`]: Windows programs under Wine against the lab, through a WinSCard
//!   of the lab's own (`lab/windows/`);
//! - [`shared`], [`lease`] and [`wait_card`]: one process-wide lab whose readers parallel tests
//!   borrow one at a time.
//!
//! See `shared/design/PCSC-LAB.md` for the measured facts these pieces rely on.

mod applet;
pub mod bridge;
mod card;
pub mod control;
mod daemon;
pub mod iso;
mod shared;
pub mod wine;

pub use applet::{default_applet, DEFAULT_ATR};
pub use card::{Counters, Reply, VirtualCard};
pub use daemon::{Lab, Reader, MAX_FRIENDLY_LEN, MAX_PAIRS};
pub use shared::{lease, lease_with, shared, wait_card, ReaderLease, SharedLab};

/// The environment variable through which libpcsclite finds the daemon's socket.
///
/// The client library reads it once per process, at the first PC/SC call, so it must be set
/// before that call; [`shared`] does so.
pub const SOCKET_ENV: &str = "PCSCLITE_CSOCK_NAME";

/// Listens on a free port of 127.0.0.1 and hands every connection to `serve` on a thread of its
/// own (named `name`), for as long as the process lives. Returns the address.
pub(crate) fn serve_connections(
    name: &str,
    serve: impl Fn(std::net::TcpStream) + Clone + Send + 'static,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    let address = listener.local_addr()?;
    let connection = format!("{name}-conn");
    std::thread::Builder::new().name(name.into()).spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    let serve = serve.clone();
                    let _ = std::thread::Builder::new().name(connection.clone()).spawn(move || serve(stream));
                }
                // Out of descriptors, say: a pause instead of a loop spinning on the same error.
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
    })?;
    Ok(address)
}

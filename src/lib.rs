//! scardmanage: the retired Windows COM interface `ISCardManage` (attach to a card or a reader,
//! reconnect, detach, lock, status) as a small C ABI over PC/SC, on every OS.
//!
//! The C contract is `include/scardmanage.h`, generated from `capi.rs`.

mod buffers;
mod capi;
mod handle_table;
mod hresult;
mod iso;
mod manager;
mod monitor;
mod objects;
mod reader_io;
mod scard;
mod spare_contexts;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod test_hooks;
mod wait;

pub use capi::*;
pub use hresult::*;

//! scardmanage: the retired Windows COM interface `ISCardManage` (attach to a card or a reader,
//! reconnect, detach, lock, status) as a small C ABI over PC/SC, on every OS.
//!
//! The C contract is `include/scardmanage.h`, generated from `capi.rs`.

mod buffers;
mod capi;
mod handle_table;
mod hresult;
mod manager;
mod scard;

pub use capi::*;
pub use hresult::*;

//! `scardmanage_com.dll`: the retired `ISCardManage` interface as an in-process COM server, over
//! the `scardmanage` library's own functions. Windows only: elsewhere this crate is empty, so
//! the workspace builds, tests and lints everywhere.

#[cfg(windows)]
mod auth;
#[cfg(windows)]
mod byte_buffer;
#[cfg(windows)]
mod dispatch;
#[cfg(windows)]
mod exports;
#[cfg(windows)]
mod factories;
#[cfg(windows)]
mod factory;
#[cfg(windows)]
mod file_access;
#[cfg(windows)]
mod manage;
#[cfg(windows)]
mod objects;
#[cfg(windows)]
mod registry;
#[cfg(windows)]
mod server;
#[cfg(windows)]
mod verify;

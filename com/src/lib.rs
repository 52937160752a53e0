//! `scardmanage_com.dll`: the retired `ISCardManage` interface as an in-process COM server, over
//! the `scardmanage` library's own functions. Windows only: elsewhere this crate is empty, so
//! the workspace builds, tests and lints everywhere.
#![cfg(windows)]

mod auth;
mod byte_buffer;
mod dispatch;
mod exports;
mod factories;
mod factory;
mod file_access;
mod manage;
mod objects;
mod registry;
mod server;
mod verify;

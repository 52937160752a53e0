//! `scardmanage_com.dll`: the retired `ISCardManage` interface as an in-process COM server, over
//! the `scardmanage` library's own functions. Windows only: elsewhere this crate is empty, so
//! the workspace builds, tests and lints everywhere.

#[cfg(windows)]
mod exports;

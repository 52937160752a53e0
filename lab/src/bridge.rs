//! The Linux side of the WinSCard bridge: a relay from the lab's `winscard.dll` (running under
//! Wine, source in `lab/windows/winscard/`) to the lab's real pcscd.
//!
//! Wine 8.0's own `winscard.dll` is a stub. The lab's replacement forwards every call over
//! loopback TCP to this relay, which makes the call with libpcsclite and answers. The relay
//! turns pcsc-lite's conventions into WinSCard's documented ones, so that the Windows side only
//! deals with strings and caller buffers:
//!
//! - codes are 32-bit; pcsc-lite's `0x8010001F` is `SCARD_E_UNSUPPORTED_FEATURE` (Windows:
//!   `0x80100022`) where a call asks for a feature (`SCardControl`, `SCardGetAttrib`,
//!   `SCardSetAttrib`) and `SCARD_E_UNEXPECTED` (Windows: the same `0x8010001F`) elsewhere;
//! - `SCardConnect` to a reader without a card fails with `SCARD_W_REMOVED_CARD` as on Windows
//!   (pcsc-lite: `SCARD_E_NO_SMARTCARD`); a handle whose card was removed already gets
//!   `SCARD_W_REMOVED_CARD` from pcsc-lite, as from Windows;
//! - `SCARD_PROTOCOL_RAW` is `0x10000` (pcsc-lite: 4) both ways; `SCARD_PROTOCOL_DEFAULT`
//!   (`0x80000000`) asks for T=0 or T=1;
//! - `SCardStatus`'s state is an ordinal (1 absent ... 6 specific), not pcsc-lite's bit set;
//! - `SCARD_CTL_CODE(n)` is `0x00310000 | (n << 2)` on Windows and `0x42000000 + n` here;
//! - the reader's name attributes (`SCARD_ATTR_DEVICE_FRIENDLY_NAME`, `..._SYSTEM_NAME`) are
//!   answered by the relay, as Windows' resource manager answers them, in UTF-8 (the Windows
//!   side gives the A forms in the ANSI code page and asks for the A form to give a W one).
//!
//! # Wire protocol
//!
//! Every message either way is a frame: a `u32` byte count, then that many bytes. Integers
//! are little-endian. In a frame, `u32` and `u64` are plain integers, `bytes` is a `u32`
//! count and that many bytes, `str` is `bytes` holding UTF-8 (no NUL), and `strs` is a `u32`
//! count of `str`s. A request is a `u32` operation and its arguments; its reply starts with
//! the `u32` WinSCard code and always has every field listed, zero or empty on failure.
//!
//! Each TCP connection carries one context: its first request is `ESTABLISH` (or `CANCEL`,
//! alone on a connection of its own), and the relay serves it from a thread of its own, so a
//! call blocked in pcscd (a transaction waiting for its holder, `SCardGetStatusChange`) blocks
//! only that connection. A closed connection releases its context.
//!
//! | op | request | reply after the code |
//! |---|---|---|
//! | 1 `ESTABLISH` | scope `u32` | cancel token `u64` |
//! | 2 `RELEASE` | | |
//! | 3 `IS_VALID` | | |
//! | 4 `LIST_READERS` | | names `strs` |
//! | 5 `LIST_GROUPS` | | groups `strs` |
//! | 6 `CONNECT` | reader `str`, share `u32`, protocols `u32` | card `u64`, protocol `u32` |
//! | 7 `RECONNECT` | card `u64`, share `u32`, protocols `u32`, initialization `u32` | protocol `u32` |
//! | 8 `DISCONNECT` | card `u64`, disposition `u32` | |
//! | 9 `BEGIN` | card `u64` | |
//! | 10 `END` | card `u64`, disposition `u32` | |
//! | 11 `STATUS` | card `u64` | names `strs`, state `u32`, protocol `u32`, ATR `bytes` |
//! | 12 `STATUS_CHANGE` | timeout `u32`, count `u32`, count × (reader `str`, current state `u32`) | count `u32`, count × (event state `u32`, ATR `bytes`) |
//! | 13 `CANCEL` | cancel token `u64` | |
//! | 14 `TRANSMIT` | card `u64`, protocol `u32`, command `bytes`, capacity `u32` | protocol `u32`, response `bytes` |
//! | 15 `CONTROL` | card `u64`, code `u32`, input `bytes`, capacity `u32` | output `bytes` |
//! | 16 `GET_ATTRIB` | card `u64`, attribute `u32` | value `bytes` |
//! | 17 `SET_ATTRIB` | card `u64`, attribute `u32`, value `bytes` | |
//!
//! `card` is pcsc-lite's handle; the Windows side hands out handles of its own. The cancel
//! token names the connection's context to `CANCEL`, which pcsc-lite serves from any thread.

use pcsc::ffi::{self, DWORD, LONG, SCARDCONTEXT, SCARDHANDLE};
use std::ffi::{c_char, CString};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};

const ESTABLISH: u32 = 1;
const RELEASE: u32 = 2;
const IS_VALID: u32 = 3;
const LIST_READERS: u32 = 4;
const LIST_GROUPS: u32 = 5;
const CONNECT: u32 = 6;
const RECONNECT: u32 = 7;
const DISCONNECT: u32 = 8;
const BEGIN: u32 = 9;
const END: u32 = 10;
const STATUS: u32 = 11;
const STATUS_CHANGE: u32 = 12;
const CANCEL: u32 = 13;
const TRANSMIT: u32 = 14;
const CONTROL: u32 = 15;
const GET_ATTRIB: u32 = 16;
const SET_ATTRIB: u32 = 17;

/// No frame is larger: an extended APDU and its header fit with room to spare.
const MAX_FRAME: usize = 1 << 20;

/// pcsc-lite's value for both `SCARD_E_UNEXPECTED` and `SCARD_E_UNSUPPORTED_FEATURE`.
const PCSCLITE_E_UNSUPPORTED: u32 = 0x8010_001F;
const E_UNSUPPORTED_FEATURE: u32 = 0x8010_0022;
const E_NO_SMARTCARD: u32 = 0x8010_000C;
const W_REMOVED_CARD: u32 = 0x8010_0069;

const ATTR_DEVICE_FRIENDLY_NAME_A: u32 = 0x7FFF_0003;
const ATTR_DEVICE_SYSTEM_NAME_A: u32 = 0x7FFF_0004;

const WIN_PROTOCOL_RAW: u32 = 0x0001_0000;
const WIN_PROTOCOL_DEFAULT: u32 = 0x8000_0000;
const PCSCLITE_PROTOCOL_RAW: u32 = 4;

/// The last control code this relay passed to pcscd, or `u64::MAX` before the first.
static LAST_CONTROL_CODE: AtomicU64 = AtomicU64::new(u64::MAX);

extern "C" {
    /// In libpcsclite (linked through `pcsc`), which the `pcsc` crate does not bind.
    fn SCardListReaderGroups(context: SCARDCONTEXT, groups: *mut c_char, length: *mut DWORD) -> LONG;
}

/// Listens on a free port of 127.0.0.1 and relays every connection to the pcscd of this
/// process's libpcsclite (`PCSCLITE_CSOCK_NAME`), from background threads, for as long as the
/// process lives. Returns the address for the Windows side (`SCM_LAB_BRIDGE`).
pub fn serve() -> io::Result<SocketAddr> {
    crate::serve_connections("scm-lab-bridge", relay)
}

/// The control code (pcsc-lite's value) of the last `SCardControl` relayed, if any: how a
/// test sees what a Windows program's `SCARD_CTL_CODE(n)` became.
pub fn last_control_code() -> Option<u32> {
    u32::try_from(LAST_CONTROL_CODE.load(Ordering::SeqCst)).ok()
}

/// Serves one connection: one context, or one cancellation.
fn relay(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut context: Option<SCARDCONTEXT> = None;
    while let Ok(request) = read_frame(&mut stream) {
        let mut input = Input(&request);
        let Some(reply) = input.u32().and_then(|op| answer(op, &mut input, &mut context)) else {
            break;
        };
        if write_frame(&mut stream, &reply.0).is_err() {
            break;
        }
    }
    if let Some(context) = context {
        // SAFETY: the context was established by this connection and is released once.
        unsafe { ffi::SCardReleaseContext(context) };
    }
}

/// The reply to one request, or `None` when the request is malformed (the connection is then
/// closed: the Windows side is ours, so this is a bug, not a caller's error).
fn answer(op: u32, input: &mut Input<'_>, context: &mut Option<SCARDCONTEXT>) -> Option<Output> {
    let mut out = Output::default();
    match op {
        ESTABLISH if context.is_none() => {
            let scope = input.u32()?;
            let mut established: SCARDCONTEXT = 0;
            // SAFETY: the out pointer is valid; the reserved pointers may be null.
            let rv = unsafe {
                ffi::SCardEstablishContext(
                    scope as DWORD,
                    std::ptr::null(),
                    std::ptr::null(),
                    &mut established,
                )
            };
            out.code(rv);
            if rv == 0 {
                *context = Some(established);
            }
            out.u64(established as u64);
        }
        CANCEL if context.is_none() => {
            let token = input.u64()? as SCARDCONTEXT;
            // SAFETY: pcsc-lite looks the context up in its own table and fails on an unknown one.
            out.code(unsafe { ffi::SCardCancel(token) });
        }
        _ => relay_call(op, input, (*context)?, &mut out, context)?,
    }
    input.is_empty().then_some(out)
}

/// The calls made on an established context.
fn relay_call(
    op: u32,
    input: &mut Input<'_>,
    ctx: SCARDCONTEXT,
    out: &mut Output,
    context: &mut Option<SCARDCONTEXT>,
) -> Option<()> {
    // SAFETY (for every FFI call below): `ctx` is this connection's live context, handles
    // are pcsc-lite's (it validates them), and every pointer passed is valid for the length
    // given with it for the duration of the call.
    match op {
        RELEASE => {
            out.code(unsafe { ffi::SCardReleaseContext(ctx) });
            *context = None;
        }
        IS_VALID => out.code(unsafe { ffi::SCardIsValidContext(ctx) }),
        LIST_READERS | LIST_GROUPS => {
            let (rv, names) = multi_string(|buffer, length| unsafe {
                if op == LIST_READERS {
                    ffi::SCardListReaders(ctx, std::ptr::null(), buffer, length)
                } else {
                    SCardListReaderGroups(ctx, buffer, length)
                }
            });
            out.code(rv);
            out.strs(&names);
        }
        CONNECT => {
            let reader = input.str()?;
            let (share, protocols) = (input.u32()?, input.u32()?);
            let (mut card, mut active): (SCARDHANDLE, DWORD) = (0, 0);
            let rv = unsafe {
                ffi::SCardConnect(
                    ctx,
                    reader.as_ptr(),
                    share as DWORD,
                    to_pcsclite(protocols),
                    &mut card,
                    &mut active,
                )
            };
            out.u32(connect_code(rv));
            out.u64(card as u64);
            out.u32(from_pcsclite(active));
        }
        RECONNECT => {
            let card = input.card()?;
            let (share, protocols, init) = (input.u32()?, input.u32()?, input.u32()?);
            let mut active: DWORD = 0;
            let rv = unsafe {
                ffi::SCardReconnect(card, share as DWORD, to_pcsclite(protocols), init as DWORD, &mut active)
            };
            out.code(rv);
            out.u32(from_pcsclite(active));
        }
        DISCONNECT => {
            let card = input.card()?;
            out.code(unsafe { ffi::SCardDisconnect(card, input.u32()? as DWORD) });
        }
        BEGIN => out.code(unsafe { ffi::SCardBeginTransaction(input.card()?) }),
        END => {
            let card = input.card()?;
            out.code(unsafe { ffi::SCardEndTransaction(card, input.u32()? as DWORD) });
        }
        STATUS => status(input.card()?, out),
        STATUS_CHANGE => status_change(ctx, input, out)?,
        TRANSMIT => {
            let (card, protocol, command) = (input.card()?, input.u32()?, input.bytes()?);
            let mut response = vec![0u8; (input.u32()? as usize).min(ffi::MAX_BUFFER_SIZE_EXTENDED)];
            let mut length = response.len() as DWORD;
            let send = ffi::SCARD_IO_REQUEST {
                dwProtocol: to_pcsclite(protocol),
                cbPciLength: std::mem::size_of::<ffi::SCARD_IO_REQUEST>() as DWORD,
            };
            let rv = unsafe {
                ffi::SCardTransmit(
                    card,
                    &send,
                    command.as_ptr(),
                    command.len() as DWORD,
                    std::ptr::null_mut(),
                    response.as_mut_ptr(),
                    &mut length,
                )
            };
            response.truncate(if rv == 0 { length as usize } else { 0 });
            out.code(rv);
            // pcsc-lite's receive PCI holds the reader driver's protocol index (1 for T=1);
            // WinSCard's holds the protocol of the exchange, which is the one sent.
            out.u32(protocol);
            out.bytes(&response);
        }
        CONTROL => {
            let (card, code, data) = (input.card()?, input.u32()?, input.bytes()?);
            let mut output = vec![0u8; (input.u32()? as usize).min(ffi::MAX_BUFFER_SIZE_EXTENDED)];
            let mut returned: DWORD = 0;
            let code = control_code(code);
            LAST_CONTROL_CODE.store(u64::from(code), Ordering::SeqCst);
            let rv = unsafe {
                ffi::SCardControl(
                    card,
                    code as DWORD,
                    data.as_ptr(),
                    data.len() as DWORD,
                    output.as_mut_ptr(),
                    output.len() as DWORD,
                    &mut returned,
                )
            };
            output.truncate(if rv == 0 { returned as usize } else { 0 });
            out.feature_code(rv);
            out.bytes(&output);
        }
        GET_ATTRIB => {
            let (card, attribute) = (input.card()?, input.u32()?);
            if attribute == ATTR_DEVICE_FRIENDLY_NAME_A || attribute == ATTR_DEVICE_SYSTEM_NAME_A {
                reader_name_attribute(card, out);
                return Some(());
            }
            // pcsc-lite refuses a length above MAX_BUFFER_SIZE before asking the reader.
            let mut value = vec![0u8; ffi::MAX_BUFFER_SIZE];
            let mut length = value.len() as DWORD;
            let rv =
                unsafe { ffi::SCardGetAttrib(card, attribute as DWORD, value.as_mut_ptr(), &mut length) };
            value.truncate(if rv == 0 { length as usize } else { 0 });
            out.feature_code(rv);
            out.bytes(&value);
        }
        SET_ATTRIB => {
            let (card, attribute, value) = (input.card()?, input.u32()?, input.bytes()?);
            let rv = unsafe {
                ffi::SCardSetAttrib(card, attribute as DWORD, value.as_ptr(), value.len() as DWORD)
            };
            out.feature_code(rv);
        }
        _ => return None,
    }
    Some(())
}

/// What `SCardStatus` says of a card connection, in pcsc-lite's terms.
struct CardStatus {
    names: Vec<CString>,
    state: u32,
    protocol: DWORD,
    atr: Vec<u8>,
}

fn card_status(card: SCARDHANDLE) -> Result<CardStatus, LONG> {
    let mut name = vec![0 as c_char; 1024];
    let mut name_length = name.len() as DWORD;
    let (mut state, mut protocol): (DWORD, DWORD) = (0, 0);
    let mut atr = [0u8; ffi::MAX_ATR_SIZE];
    let mut atr_length = atr.len() as DWORD;
    // SAFETY: every buffer is valid for the length passed with it.
    let rv = unsafe {
        ffi::SCardStatus(
            card,
            name.as_mut_ptr(),
            &mut name_length,
            &mut state,
            &mut protocol,
            atr.as_mut_ptr(),
            &mut atr_length,
        )
    };
    if rv != 0 {
        return Err(rv);
    }
    Ok(CardStatus {
        names: split_multi_string(&name[..name_length as usize]),
        state: win_dword(state),
        protocol,
        atr: atr[..atr_length as usize].to_vec(),
    })
}

fn status(card: SCARDHANDLE, out: &mut Output) {
    match card_status(card) {
        Ok(status) => {
            out.code(0);
            out.strs(&status.names);
            out.u32(ordinal_state(status.state, win_dword(status.protocol)));
            out.u32(from_pcsclite(status.protocol));
            out.bytes(&status.atr);
        }
        Err(rv) => {
            out.code(rv);
            out.strs(&[]);
            out.u32(0);
            out.u32(0);
            out.bytes(&[]);
        }
    }
}

/// `SCARD_ATTR_DEVICE_FRIENDLY_NAME_A` and `SCARD_ATTR_DEVICE_SYSTEM_NAME_A`: WinSCard's
/// resource manager answers these itself, from the name it knows the reader by, whatever the
/// driver supports (the vpcd driver answers neither through pcscd).
fn reader_name_attribute(card: SCARDHANDLE, out: &mut Output) {
    match card_status(card) {
        Ok(status) => {
            out.code(0);
            let name = status.names.first().map(|n| n.as_bytes_with_nul()).unwrap_or(b"\0");
            out.bytes(name);
        }
        Err(rv) => {
            out.feature_code(rv);
            out.bytes(&[]);
        }
    }
}

fn status_change(ctx: SCARDCONTEXT, input: &mut Input<'_>, out: &mut Output) -> Option<()> {
    let timeout = input.u32()?;
    let count = input.u32()? as usize;
    // Each entry is at least 8 bytes on the wire: a malformed count cannot make us allocate.
    if count > input.0.len() / 8 {
        return None;
    }
    let mut names = Vec::with_capacity(count);
    let mut current = Vec::with_capacity(count);
    for _ in 0..count {
        names.push(input.str()?);
        current.push(input.u32()?);
    }
    let mut states: Vec<ffi::SCARD_READERSTATE> = names
        .iter()
        .zip(&current)
        .map(|(name, &state)| ffi::SCARD_READERSTATE {
            szReader: name.as_ptr(),
            pvUserData: std::ptr::null_mut(),
            dwCurrentState: state as DWORD,
            dwEventState: 0,
            cbAtr: 0,
            rgbAtr: [0; ffi::ATR_BUFFER_SIZE],
        })
        .collect();
    // SAFETY: the states and the names they point to live across the call.
    let rv = unsafe { ffi::SCardGetStatusChange(ctx, timeout as DWORD, states.as_mut_ptr(), count as DWORD) };
    out.code(rv);
    out.u32(count as u32);
    for state in &states {
        out.u32(win_dword(state.dwEventState));
        out.bytes(&state.rgbAtr[..(state.cbAtr as usize).min(ffi::ATR_BUFFER_SIZE)]);
    }
    Some(())
}

/// Calls `call` (a pcsc-lite function filling a multi-string) with a buffer large enough for
/// any answer, and splits the result.
fn multi_string(call: impl Fn(*mut c_char, *mut DWORD) -> LONG) -> (LONG, Vec<CString>) {
    let mut length: DWORD = 0;
    let rv = call(std::ptr::null_mut(), &mut length);
    if rv != 0 {
        return (rv, Vec::new());
    }
    let mut buffer = vec![0 as c_char; length as usize];
    let rv = call(buffer.as_mut_ptr(), &mut length);
    if rv != 0 {
        return (rv, Vec::new());
    }
    (rv, split_multi_string(&buffer[..length as usize]))
}

fn split_multi_string(buffer: &[c_char]) -> Vec<CString> {
    // SAFETY: c_char and u8 have the same size and alignment.
    let bytes = unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), buffer.len()) };
    bytes
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| CString::new(s).expect("split at NULs"))
        .collect()
}

/// `SCardConnect`'s code as WinSCard's: Windows reports an empty reader as a removed card.
fn connect_code(rv: LONG) -> u32 {
    match rv as u32 {
        E_NO_SMARTCARD => W_REMOVED_CARD,
        code => code,
    }
}

/// A pcsc-lite `DWORD` in the 32 bits of WinSCard's: `unsigned long` is 64 bits wide on 64-bit
/// Linux and 32 on 32-bit Linux, where the cast changes nothing (and clippy says so).
#[allow(clippy::unnecessary_cast)]
fn win_dword(value: DWORD) -> u32 {
    value as u32
}

/// A Windows protocol mask in pcsc-lite's terms. Bits Windows does not define are dropped:
/// pcsc-lite reads 4 as RAW and 8 as T=15.
fn to_pcsclite(protocols: u32) -> DWORD {
    let mut mapped = protocols & win_dword(ffi::SCARD_PROTOCOL_T0 | ffi::SCARD_PROTOCOL_T1);
    if protocols & WIN_PROTOCOL_RAW != 0 {
        mapped |= PCSCLITE_PROTOCOL_RAW;
    }
    if protocols & WIN_PROTOCOL_DEFAULT != 0 {
        mapped |= win_dword(ffi::SCARD_PROTOCOL_ANY);
    }
    mapped as DWORD
}

/// A pcsc-lite protocol in Windows terms.
fn from_pcsclite(protocol: DWORD) -> u32 {
    let protocol = win_dword(protocol);
    if protocol & PCSCLITE_PROTOCOL_RAW != 0 {
        (protocol & !PCSCLITE_PROTOCOL_RAW) | WIN_PROTOCOL_RAW
    } else {
        protocol
    }
}

/// pcsc-lite's state bits (`SCARD_ABSENT` 0x2 ... `SCARD_SPECIFIC` 0x40, event counter above)
/// as WinSCard's ordinal: the most advanced state reached. pcsc-lite keeps `NEGOTIABLE` set
/// after a protocol has been chosen; a powered card with an active protocol is what WinSCard
/// calls `SCARD_SPECIFIC`.
fn ordinal_state(bits: u32, protocol: u32) -> u32 {
    const ORDER: [(u32, u32); 6] = [(0x40, 6), (0x20, 5), (0x10, 4), (0x08, 3), (0x04, 2), (0x02, 1)];
    let ordinal = ORDER.iter().find(|(bit, _)| bits & bit != 0).map_or(0, |&(_, ordinal)| ordinal);
    if ordinal >= 4 && protocol != 0 {
        6
    } else {
        ordinal
    }
}

/// `SCARD_CTL_CODE(n)` of Windows (`0x00310000 | n << 2`, `FILE_DEVICE_SMARTCARD`,
/// `METHOD_BUFFERED`, any access) as pcsc-lite's `0x42000000 + n`; other codes pass unchanged.
fn control_code(code: u32) -> u32 {
    if code & 0xFFFF_C003 == 0x0031_0000 {
        0x4200_0000 + ((code >> 2) & 0xFFF)
    } else {
        code
    }
}

fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_FRAME {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let mut frame = vec![0u8; length];
    stream.read_exact(&mut frame)?;
    Ok(frame)
}

fn write_frame(stream: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    // One write: two small ones would meet Nagle's algorithm on the other side's delayed ACK.
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame)
}

/// A request being read.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn card(&mut self) -> Option<SCARDHANDLE> {
        self.u64().map(|h| h as SCARDHANDLE)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// A reader name; one with a NUL inside cannot name a reader and is sent on as empty.
    fn str(&mut self) -> Option<CString> {
        Some(CString::new(self.bytes()?).unwrap_or_default())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A reply being written.
#[derive(Default)]
struct Output(Vec<u8>);

impl Output {
    fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn bytes(&mut self, value: &[u8]) {
        self.u32(value.len() as u32);
        self.0.extend_from_slice(value);
    }

    fn strs(&mut self, values: &[CString]) {
        self.u32(values.len() as u32);
        for value in values {
            self.bytes(value.as_bytes());
        }
    }

    /// A pcsc-lite code as WinSCard's: the 32 bits of `LONG`.
    fn code(&mut self, rv: LONG) {
        self.u32(rv as u32);
    }

    /// The code of a call that asks for a feature of the reader, where pcsc-lite's
    /// `0x8010001F` means `SCARD_E_UNSUPPORTED_FEATURE`.
    fn feature_code(&mut self, rv: LONG) {
        let rv = rv as u32;
        self.u32(if rv == PCSCLITE_E_UNSUPPORTED { E_UNSUPPORTED_FEATURE } else { rv });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions() {
        assert_eq!(to_pcsclite(WIN_PROTOCOL_RAW), 4);
        assert_eq!(to_pcsclite(3), 3);
        assert_eq!(to_pcsclite(4 | 8 | 1), 1);
        assert_eq!(to_pcsclite(WIN_PROTOCOL_DEFAULT), 3);
        assert_eq!(from_pcsclite(4), WIN_PROTOCOL_RAW);
        assert_eq!(from_pcsclite(2), 2);
        assert_eq!(ordinal_state(0x10034, 2), 6);
        assert_eq!(ordinal_state(0x10034, 0), 5);
        assert_eq!(ordinal_state(0x2, 0), 1);
        assert_eq!(ordinal_state(0x10016, 0), 4);
        assert_eq!(ordinal_state(0x10016, 2), 6);
        assert_eq!(ordinal_state(0x1, 0), 0);
        assert_eq!(control_code(0x0031_0000 | (3400 << 2)), 0x4200_0000 + 3400);
        assert_eq!(control_code(0x0031_0001 | (3400 << 2)), 0x0031_0001 | (3400 << 2));
        assert_eq!(control_code(0x4200_0D48), 0x4200_0D48);
        assert_eq!(connect_code(E_NO_SMARTCARD as LONG), W_REMOVED_CARD);
        assert_eq!(connect_code(0), 0);
    }
}

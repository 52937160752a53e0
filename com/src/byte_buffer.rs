//! `IByteBuffer` (IID E126F8FE-A7AF-11D0-B88A-00C04FD424B9, the vtable of scardssp.dll's, as
//! mingw-w64's scardssp.h has it) and the creatable class `CByteBuffer` (CLSID_CByteBuffer
//! E126F8FF-A7AF-11D0-B88A-00C04FD424B9, ProgID `SCardCOM.ByteBuffer`): a growable buffer of
//! bytes with a seek position, as the file access and authentication methods take.
//!
//! For the other objects of the server: [`read_all`], [`new_buffer`] and [`replace`] work on any
//! caller's IByteBuffer through its vtable (another implementation's too).

#![allow(non_snake_case)] // the COM method names, as the vtable spells them

use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard};
use windows::core::{implement, interface, IUnknown, Interface, BSTR, GUID, HRESULT};
use windows::Win32::Foundation::{
    E_INVALIDARG, E_NOTIMPL, E_OUTOFMEMORY, E_POINTER, STG_E_INVALIDFUNCTION, STG_E_MEDIUMFULL,
};
use windows::Win32::System::Variant::VARIANT;

use crate::dispatch::{
    call, wipe, write, Args, Automation, Failure, IAutomation, IAutomation_Impl, IAutomation_Vtbl,
    IErrorSupport, Result,
};
use crate::objects::Secret;
use crate::server::Live;

pub(crate) const CLSID_CBYTE_BUFFER: GUID = GUID::from_u128(0xE126F8FF_A7AF_11D0_B88A_00C04FD424B9);
/// The ProgID scripts create buffers by (`CreateObject("SCardCOM.ByteBuffer")`); scardssp.dll's
/// own registration is gone with it, so the name follows this server's.
pub(crate) const BYTE_BUFFER_PROGID: &str = "SCardCOM.ByteBuffer";

/// `Seek` origins (STREAM_SEEK_SET, _CUR, _END).
const SEEK_SET: i32 = 0;
const SEEK_CUR: i32 = 1;
const SEEK_END: i32 = 2;
/// `STATSTRUCT.type` of a stream (STGTY_STREAM).
const STGTY_STREAM: i32 = 2;
/// The most bytes a buffer holds: 16 MiB, far above what a card exchanges (an extended-length
/// answer is 64 KiB) and far below what a LONG size could ask for (2 GiB, more than a 32-bit
/// process has to give). Growing past it is `STG_E_MEDIUMFULL`, as a full stream answers,
/// instead of a huge allocation whose failure would abort the caller's process.
const MAX_SIZE: usize = 16 << 20;

/// scardssp.h's STATSTRUCT.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct StatStruct {
    pub r#type: i32,
    pub cbSize: i32,
    pub grfMode: i32,
    pub grfLocksSupported: i32,
    pub grfStateBits: i32,
}

#[interface("E126F8FE-A7AF-11D0-B88A-00C04FD424B9")]
pub(crate) unsafe trait IByteBuffer: IAutomation {
    fn get_Stream(&self, stream: *mut *mut c_void) -> HRESULT;
    fn put_Stream(&self, stream: *mut c_void) -> HRESULT;
    fn Clone(&self, buffer: *mut *mut c_void) -> HRESULT;
    fn Commit(&self, flags: i32) -> HRESULT;
    fn CopyTo(&self, buffer: *mut *mut c_void, count: i32, read: *mut i32, written: *mut i32) -> HRESULT;
    fn Initialize(&self, size: i32, data: *const u8) -> HRESULT;
    fn LockRegion(&self, offset: i32, count: i32, lock_type: i32) -> HRESULT;
    fn Read(&self, bytes: *mut u8, count: i32, read: *mut i32) -> HRESULT;
    fn Revert(&self) -> HRESULT;
    fn Seek(&self, moved: i32, origin: i32, position: *mut i32) -> HRESULT;
    fn SetSize(&self, size: i32) -> HRESULT;
    fn Stat(&self, stat: *mut StatStruct, flag: i32) -> HRESULT;
    fn UnlockRegion(&self, offset: i32, count: i32, lock_type: i32) -> HRESULT;
    fn Write(&self, bytes: *const u8, count: i32, written: *mut i32) -> HRESULT;
}

/// A buffer's content, wiped when it goes (buffers carry PINs to ISCardVerify).
#[derive(Clone, Default)]
struct State {
    bytes: Vec<u8>,
    /// May be past the end (Seek allows it, as IStream's does): reads there give nothing,
    /// writes fill the gap with zeros.
    position: usize,
}

impl Drop for State {
    fn drop(&mut self) {
        drop(Secret(std::mem::take(&mut self.bytes)));
    }
}

#[implement(IByteBuffer, IErrorSupport)]
pub(crate) struct ByteBuffer {
    state: Mutex<State>,
    _live: Live,
}

fn length(count: i32) -> Result<usize> {
    usize::try_from(count).map_err(|_| E_INVALIDARG.into())
}

fn long(value: usize) -> Result<i32> {
    i32::try_from(value).map_err(|_| E_INVALIDARG.into())
}

/// Makes `bytes` `len` long (zeros added at the end): `STG_E_MEDIUMFULL` past [`MAX_SIZE`],
/// `E_OUTOFMEMORY` when the memory is not there (a failed allocation aborts the process).
fn resize(bytes: &mut Vec<u8>, len: usize) -> Result<()> {
    if len > MAX_SIZE {
        return Err(STG_E_MEDIUMFULL.into());
    }
    if len > bytes.capacity() {
        // A new allocation, the old one wiped (a reallocation would free it as it is).
        let mut grown = Vec::new();
        grown.try_reserve_exact(len).map_err(|_| Failure::from(E_OUTOFMEMORY))?;
        grown.extend_from_slice(bytes);
        drop(Secret(std::mem::replace(bytes, grown)));
    }
    bytes.resize(len, 0);
    Ok(())
}

/// `len` zero bytes, within the same limits as [`resize`].
fn zeros(len: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    resize(&mut bytes, len)?;
    Ok(bytes)
}

/// A copy of `bytes` for a buffer's content, within the same limits as [`resize`].
fn content(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut copy = zeros(bytes.len())?;
    copy.copy_from_slice(bytes);
    Ok(copy)
}

impl ByteBuffer {
    fn with(state: State) -> IByteBuffer {
        ByteBuffer { state: Mutex::new(state), _live: Live::new() }.into()
    }

    /// A new, empty buffer (the class factory's object).
    pub(crate) fn new_object() -> Result<IUnknown> {
        Ok(Self::with(State::default()).into())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic in another call cannot leave the bytes inconsistent: use them as they are.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn initialize(&self, bytes: Vec<u8>) {
        *self.state() = State { bytes, position: 0 };
    }

    /// Up to `count` bytes from the position (which moves past them), given to `take` under
    /// the lock: the caller's memory gets them without a copy of ours in between.
    fn read_with<R>(&self, count: usize, take: impl FnOnce(&[u8]) -> R) -> R {
        let mut state = self.state();
        let start = state.position.min(state.bytes.len());
        let end = start.saturating_add(count).min(state.bytes.len());
        state.position = end;
        take(&state.bytes[start..end])
    }

    fn read(&self, count: usize) -> Vec<u8> {
        self.read_with(count, <[u8]>::to_vec)
    }

    fn write_bytes(&self, bytes: &[u8]) -> Result<()> {
        let mut state = self.state();
        let end = state.position.checked_add(bytes.len()).ok_or(Failure::from(STG_E_MEDIUMFULL))?;
        if state.bytes.len() < end {
            resize(&mut state.bytes, end)?;
        }
        let start = state.position;
        state.bytes[start..end].copy_from_slice(bytes);
        state.position = end;
        Ok(())
    }

    fn seek(&self, moved: i32, origin: i32) -> Result<i32> {
        let mut state = self.state();
        let base = match origin {
            SEEK_SET => 0,
            SEEK_CUR => long(state.position)?,
            SEEK_END => long(state.bytes.len())?,
            _ => return Err(E_INVALIDARG.into()),
        };
        let position = base.checked_add(moved).filter(|p| *p >= 0).ok_or(Failure::from(E_INVALIDARG))?;
        state.position = position as usize;
        Ok(position)
    }

    fn set_size(&self, size: i32) -> Result<()> {
        let size = length(size)?;
        resize(&mut self.state().bytes, size)
    }
}

/// A caller's byte array as a slice: `count` bytes at `bytes` (NULL only with a count of 0).
fn caller_bytes<'a>(bytes: *const u8, count: i32) -> Result<&'a [u8]> {
    let count = length(count)?;
    if count == 0 {
        return Ok(&[]);
    }
    if bytes.is_null() {
        return Err(E_POINTER.into());
    }
    // SAFETY: non-NULL; the caller passes `count` readable bytes for the call.
    Ok(unsafe { std::slice::from_raw_parts(bytes, count) })
}

impl IByteBuffer_Impl for ByteBuffer_Impl {
    unsafe fn get_Stream(&self, _stream: *mut *mut c_void) -> HRESULT {
        call::<Self>(|| Err(E_NOTIMPL.into()))
    }

    unsafe fn put_Stream(&self, _stream: *mut c_void) -> HRESULT {
        call::<Self>(|| Err(E_NOTIMPL.into()))
    }

    unsafe fn Clone(&self, buffer: *mut *mut c_void) -> HRESULT {
        call::<Self>(|| {
            // Checked before the copy is made: a copy with nowhere to go would never be
            // released (and DllCanUnloadNow would count it forever).
            if buffer.is_null() {
                return Err(E_POINTER.into());
            }
            let copy = ByteBuffer::with(self.state().clone());
            write(buffer, copy.into_raw())
        })
    }

    unsafe fn Commit(&self, _flags: i32) -> HRESULT {
        call::<Self>(|| Ok(()))
    }

    unsafe fn CopyTo(
        &self,
        buffer: *mut *mut c_void,
        count: i32,
        read: *mut i32,
        written: *mut i32,
    ) -> HRESULT {
        call::<Self>(|| {
            if buffer.is_null() {
                return Err(E_POINTER.into());
            }
            let Secret(bytes) = &Secret(self.read(length(count)?));
            // SAFETY: non-NULL: the caller's IByteBuffer pointer variable, read (not taken).
            let target = unsafe { *buffer };
            if target.is_null() {
                write(
                    buffer,
                    ByteBuffer::with(State { bytes: content(bytes)?, position: bytes.len() }).into_raw(),
                )?;
            } else {
                // SAFETY: a non-NULL IByteBuffer of the caller's, borrowed for the call.
                let target =
                    unsafe { IByteBuffer::from_raw_borrowed(&target) }.ok_or(Failure::from(E_POINTER))?;
                append(target, bytes)?;
            }
            let n = long(bytes.len())?;
            for out in [read, written] {
                if !out.is_null() {
                    write(out, n)?;
                }
            }
            Ok(())
        })
    }

    unsafe fn Initialize(&self, size: i32, data: *const u8) -> HRESULT {
        call::<Self>(|| {
            let bytes =
                if data.is_null() { zeros(length(size)?)? } else { content(caller_bytes(data, size)?)? };
            self.initialize(bytes);
            Ok(())
        })
    }

    unsafe fn LockRegion(&self, _offset: i32, _count: i32, _lock_type: i32) -> HRESULT {
        call::<Self>(|| Err(STG_E_INVALIDFUNCTION.into()))
    }

    unsafe fn Read(&self, bytes: *mut u8, count: i32, read: *mut i32) -> HRESULT {
        call::<Self>(|| {
            let count = length(count)?;
            if count > 0 && bytes.is_null() {
                return Err(E_POINTER.into());
            }
            let done = self.read_with(count, |data| {
                if !data.is_empty() {
                    // SAFETY: non-NULL (checked for a count above 0); the caller passes `count`
                    // writable bytes and `data` is at most that long.
                    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), bytes, data.len()) };
                }
                data.len()
            });
            if !read.is_null() {
                write(read, long(done)?)?;
            }
            Ok(())
        })
    }

    unsafe fn Revert(&self) -> HRESULT {
        call::<Self>(|| Ok(()))
    }

    unsafe fn Seek(&self, moved: i32, origin: i32, position: *mut i32) -> HRESULT {
        call::<Self>(|| {
            let now = self.seek(moved, origin)?;
            if !position.is_null() {
                write(position, now)?;
            }
            Ok(())
        })
    }

    unsafe fn SetSize(&self, size: i32) -> HRESULT {
        call::<Self>(|| self.set_size(size))
    }

    unsafe fn Stat(&self, stat: *mut StatStruct, _flag: i32) -> HRESULT {
        call::<Self>(|| {
            let size = long(self.state().bytes.len())?;
            write(stat, StatStruct { r#type: STGTY_STREAM, cbSize: size, ..Default::default() })
        })
    }

    unsafe fn UnlockRegion(&self, _offset: i32, _count: i32, _lock_type: i32) -> HRESULT {
        call::<Self>(|| Err(STG_E_INVALIDFUNCTION.into()))
    }

    unsafe fn Write(&self, bytes: *const u8, count: i32, written: *mut i32) -> HRESULT {
        call::<Self>(|| {
            let data = caller_bytes(bytes, count)?;
            self.write_bytes(data)?;
            if !written.is_null() {
                write(written, count)?;
            }
            Ok(())
        })
    }
}

/// Late-bound use (scripts), where BYTE* cannot be passed: bytes travel as a string whose
/// characters are the bytes (U+0000..U+00FF, "A" = 0x41), which a script can build and compare
/// directly. `b.Write "1234"` (or a byte array, VT_ARRAY|VT_UI1, or a number 0..255 for one
/// byte; an optional count takes the first bytes only), `b.Read s, 33` (up to 33 bytes into `s`
/// as such a string; `b.Read v, 1` gives the one byte as a number; optional third variable: the
/// count), `b.Initialize 16` (16 zero bytes),
/// `b.Clone c` (a copy into `c`), `pos = b.Seek(0, 0)`, `b.SetSize n`, `b.Commit`, `b.Revert`.
/// DISPIDs as in scardmanage.idl.
impl Automation for ByteBuffer_Impl {
    const IID: GUID = IByteBuffer::IID;

    fn invoke(&self, id: i32, args: &Args<'_>) -> Result<VARIANT> {
        let none = VARIANT::default();
        let counted = |pos: usize| if args.len() > pos { args.out(pos).map(Some) } else { Ok(None) };
        match id {
            2 => {
                args.count(1, 1)?;
                let target = args.out(0)?;
                // The lock is let go before the caller's variable is written: writing it releases
                // what it held, which may run the caller's code, and that code may use this buffer.
                let copy = ByteBuffer::with(self.state().clone());
                target.set_object(&copy.into());
                Ok(none)
            }
            3 | 8 => Ok(none),
            5 => {
                args.count(0, 2)?;
                self.initialize(zeros(length(args.i32_or(0, 1)?)?)?);
                Ok(none)
            }
            7 => {
                args.count(2, 3)?;
                let (target, counted) = (args.out(0)?, counted(2)?);
                let wanted = length(args.i32(1)?)?;
                let Secret(data) = &Secret(self.read(wanted));
                match (wanted, data.first()) {
                    // One byte is a number, as `b.Write 65` writes one.
                    (1, Some(&byte)) => target.set_i32(i32::from(byte)),
                    (1, None) => {}
                    _ => {
                        let mut text: Vec<u16> = data.iter().map(|&byte| u16::from(byte)).collect();
                        target.set_bstr(BSTR::from_wide(&text));
                        wipe(&mut text);
                    }
                }
                if let Some(counted) = counted {
                    counted.set_i32(long(data.len())?);
                }
                Ok(none)
            }
            9 => {
                args.count(2, 3)?;
                let moved_to = counted(2)?;
                let now = self.seek(args.i32(0)?, args.i32(1)?)?;
                if let Some(out) = moved_to {
                    out.set_i32(now);
                }
                Ok(VARIANT::from(now))
            }
            10 => {
                args.count(1, 1)?;
                self.set_size(args.i32(0)?).map(|()| none)
            }
            13 => {
                args.count(1, 3)?;
                let counted = counted(2)?;
                let mut data = Secret(args.bytes(0)?);
                if args.len() > 1 {
                    data.0.truncate(length(args.i32(1)?)?);
                }
                self.write_bytes(&data.0)?;
                if let Some(counted) = counted {
                    counted.set_i32(long(data.0.len())?);
                }
                Ok(none)
            }
            1 | 4 | 6 | 11 | 12 => Err(E_NOTIMPL.into()),
            _ => Err(Failure::unknown_member()),
        }
    }
}

fn check(hr: HRESULT) -> Result<()> {
    if hr.is_err() {
        Err(hr.into())
    } else {
        Ok(())
    }
}

/// The whole content of any IByteBuffer (ours or another implementation's), read through its
/// vtable from the start; its seek position is put back as it was.
pub(crate) fn read_all(buffer: &IByteBuffer) -> Result<Vec<u8>> {
    let (mut saved, mut size) = (0, 0);
    // SAFETY: calls through the caller's live IByteBuffer with writable out-pointers; Read
    // writes at most `size` bytes into a buffer of that many.
    unsafe {
        check(buffer.Seek(0, SEEK_CUR, &mut saved))?;
        check(buffer.Seek(0, SEEK_END, &mut size))?;
        check(buffer.Seek(0, SEEK_SET, std::ptr::null_mut()))?;
        // The size is the other implementation's word: no more than a buffer of ours holds.
        // Wiped if a failure below drops it: it may hold part of a PIN.
        let mut secret = Secret(zeros(length(size)?)?);
        let bytes = &mut secret.0;
        let mut filled = 0usize;
        while filled < bytes.len() {
            let mut read = 0;
            check(buffer.Read(bytes[filled..].as_mut_ptr(), long(bytes.len() - filled)?, &mut read))?;
            if read <= 0 {
                break;
            }
            filled += (read as usize).min(bytes.len() - filled);
        }
        bytes.truncate(filled);
        check(buffer.Seek(saved, SEEK_SET, std::ptr::null_mut()))?;
        Ok(std::mem::take(bytes))
    }
}

/// A new IByteBuffer (this server's CByteBuffer) holding `bytes`, positioned at the start.
pub(crate) fn new_buffer(bytes: &[u8]) -> Result<IByteBuffer> {
    Ok(ByteBuffer::with(State { bytes: content(bytes)?, position: 0 }))
}

/// Makes `bytes` the whole content of any caller's IByteBuffer, positioned at the start (for a
/// `[in, out]` buffer a method fills).
pub(crate) fn replace(buffer: &IByteBuffer, bytes: &[u8]) -> Result<()> {
    // SAFETY: calls through the caller's live IByteBuffer; `bytes` outlives the Write.
    unsafe {
        check(buffer.SetSize(0))?;
        check(buffer.Seek(0, SEEK_SET, std::ptr::null_mut()))?;
        append(buffer, bytes)?;
        check(buffer.Seek(0, SEEK_SET, std::ptr::null_mut()))
    }
}

/// Writes `bytes` at the buffer's position, through its vtable.
fn append(buffer: &IByteBuffer, bytes: &[u8]) -> Result<()> {
    let mut written = 0;
    // SAFETY: `bytes` is readable for its length during the call; `written` is writable.
    check(unsafe { buffer.Write(bytes.as_ptr(), long(bytes.len())?, &mut written) })?;
    if written as usize == bytes.len() {
        Ok(())
    } else {
        Err(windows::Win32::Foundation::STG_E_MEDIUMFULL.into())
    }
}

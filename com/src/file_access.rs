//! `ISCardFileAccess` (IID 4029DD8A-5902-11D0-B84C-00C04FD424B9): the files of the ISO/IEC
//! 7816-4 card the creating ISCardManage is attached to, over the library's `scm_file_*`. Each
//! method calls the function of the same name and returns its HRESULT; the same code serves the
//! vtable and `Invoke` (DISPIDs as objects.idl lists them).

#![allow(non_snake_case)] // the COM method names, as the vtable spells them

use std::ffi::c_void;
use windows::core::{implement, interface, Interface, BSTR, GUID, HRESULT};
use windows::Win32::Foundation::{E_INVALIDARG, E_POINTER};
use windows::Win32::System::Com::SAFEARRAY;
use windows::Win32::System::Variant::VARIANT;

use crate::byte_buffer;
use crate::dispatch::{
    call, scm, wide, write, Args, Automation, Failure, IAutomation, IAutomation_Impl, IAutomation_Vtbl,
    IErrorSupport, Out, Result,
};
use crate::manage::ISCardManage;
use crate::objects::{
    arg_bytes, arg_bytes_required, borrowed, buffer_out_or_result, data_ptr, file_flags, give, name,
    optional_bytes, out_or_result, required_bytes, BufferResult,
};
use crate::server::Live;
use scardmanage::{
    scm_file_access, scm_manage, SCM_E_HANDLE, SCM_REF_BY_ID, SCM_SCARD_E_INSUFFICIENT_BUFFER,
    SCM_SCARD_W_EOF,
};

#[interface("4029DD8A-5902-11D0-B84C-00C04FD424B9")]
pub(crate) unsafe trait ISCardFileAccess: IAutomation {
    fn ChangeDir(&self, reference: i32, name: *const u16) -> HRESULT;
    fn Close(&self, file: i32) -> HRESULT;
    fn Create(
        &self,
        reference: i32,
        name: *const u16,
        tlv: *mut c_void,
        flags: i32,
        data: *mut c_void,
    ) -> HRESULT;
    fn Delete(&self, reference: i32, name: *const u16, flags: i32) -> HRESULT;
    fn Directory(&self, file_type: i32, list: *mut *mut SAFEARRAY) -> HRESULT;
    fn GetCurrentDir(&self, path: *mut BSTR) -> HRESULT;
    fn GetFileCapabilities(&self, properties: *mut *mut c_void, count: *mut i32, flags: i32) -> HRESULT;
    fn GetProperties(&self, reference: i32, name: *const u16, flags: i32, tlv: *mut *mut c_void) -> HRESULT;
    fn Invalidate(&self, name: *const u16, flags: i32) -> HRESULT;
    fn Open(&self, reference: i32, name: *const u16, file: *mut i32) -> HRESULT;
    fn Read(&self, file: i32, count: *mut i32, flags: i32, buffer: *mut *mut c_void) -> HRESULT;
    fn Rehabilitate(&self, name: *const u16, flags: i32) -> HRESULT;
    fn Seek(&self, file: i32, origin: i32, offset: i32) -> HRESULT;
    fn SetProperties(&self, reference: i32, name: *const u16, flags: i32, table: *mut c_void) -> HRESULT;
    fn Write(&self, file: i32, data: *mut c_void, flags: i32) -> HRESULT;
}

/// How much one library read asks for at most. Above the longest record (65 528 bytes), so a
/// record read never fills it: a full answer means a transparent file with more to read.
const READ_CHUNK: usize = 256 * 1024;

/// One `scm_file_access` of the library, on the manager of the ISCardManage that made it.
#[implement(ISCardFileAccess, IErrorSupport)]
pub(crate) struct FileAccess {
    /// The library's token (`scm_file_access *`).
    token: usize,
    /// The creating ISCardManage, kept alive as long as this object: its `scm_manage` stays
    /// live, so the object keeps working when the caller has released the manager.
    _manager: ISCardManage,
    _live: Live,
}

/// A method on a file number: the library's SCM_E_HANDLE then most likely names the number (this
/// object and its manager are kept alive by the caller's reference), which the message says.
fn on_file(failure: Failure) -> Failure {
    match failure {
        Failure::Call { hr, .. } if hr.0 == SCM_E_HANDLE => {
            failure.context("hFile is not a file open on this object")
        }
        failure => failure,
    }
}

/// A failed Read, and the count the caller gets all the same (as the library writes it).
struct ReadFailure {
    failure: Failure,
    count: Option<usize>,
}

impl FileAccess {
    pub(crate) fn create(manager: *mut scm_manage, this: &ISCardManage) -> Result<ISCardFileAccess> {
        let mut token = std::ptr::null_mut();
        // SAFETY: `token` is writable; the library checks the manager's token.
        scm(unsafe { scardmanage::scm_create_file_access(manager, &mut token) })?;
        Ok(FileAccess { token: token as usize, _manager: this.clone(), _live: Live::new() }.into())
    }

    fn token(&self) -> *mut scm_file_access {
        self.token as *mut scm_file_access
    }

    fn change_dir(&self, reference: i32, path: &[u16]) -> Result<()> {
        let path = name(path)?;
        // SAFETY: `path` is NUL-terminated and outlives the call; the library checks the rest.
        scm(unsafe { scardmanage::scm_file_change_dir(self.token(), reference as u32, path.as_ptr()) })
    }

    fn close(&self, file: i32) -> Result<()> {
        // SAFETY: the library checks the token and the file number.
        scm(unsafe { scardmanage::scm_file_close(self.token(), file as u32) }).map_err(on_file)
    }

    fn create_file(&self, reference: i32, path: &[u16], fcp: &[u8], flags: i32, data: &[u8]) -> Result<()> {
        let flags = file_flags(flags)?;
        if !data.is_empty() {
            // Initial content comes with SC_FL_PREALLOCATED, which file_flags refused already.
            return Err(Failure::from(E_INVALIDARG).context("pDataBuffer goes with SC_FL_PREALLOCATED"));
        }
        let path = name(path)?;
        // SAFETY: `path` is NUL-terminated, `fcp` readable for its length; both outlive the call.
        scm(unsafe {
            scardmanage::scm_file_create(
                self.token(),
                reference as u32,
                path.as_ptr(),
                data_ptr(fcp),
                fcp.len(),
                flags,
            )
        })
    }

    fn delete(&self, reference: i32, path: &[u16], flags: i32) -> Result<()> {
        let flags = file_flags(flags)?;
        let path = name(path)?;
        // SAFETY: `path` is NUL-terminated and outlives the call.
        scm(unsafe { scardmanage::scm_file_delete(self.token(), reference as u32, path.as_ptr(), flags) })
    }

    /// Always a failure for a live object (no ISO/IEC 7816-4 command lists a directory): the
    /// library's answer, E_NOTIMPL.
    fn directory(&self, file_type: i32) -> Result<()> {
        let mut len = 0;
        // SAFETY: a size query (`names` NULL, `len` writable); the library checks the token.
        scm(unsafe {
            scardmanage::scm_file_directory(self.token(), file_type as u32, std::ptr::null_mut(), &mut len)
        })
    }

    fn current_dir(&self) -> Result<BSTR> {
        let mut len = 0;
        // SAFETY: a size query: `path` NULL with a writable length.
        scm(unsafe { scardmanage::scm_file_get_current_dir(self.token(), std::ptr::null_mut(), &mut len) })?;
        let mut path = vec![0u8; len];
        // SAFETY: `path` is writable for `len` bytes, its length.
        scm(unsafe {
            scardmanage::scm_file_get_current_dir(self.token(), path.as_mut_ptr().cast(), &mut len)
        })?;
        path.truncate(len.saturating_sub(1)); // the NUL
                                              // The library writes ASCII (hex digits and '/').
        Ok(BSTR::from(String::from_utf8_lossy(&path).as_ref()))
    }

    fn file_capabilities(&self, flags: i32) -> Result<()> {
        file_flags(flags)?;
        let mut capabilities = 0;
        // SAFETY: a writable u32; the library checks the token (and answers E_NOTIMPL).
        scm(unsafe { scardmanage::scm_file_get_file_capabilities(self.token(), &mut capabilities) })
    }

    fn properties(&self, reference: i32, path: &[u16], flags: i32) -> Result<Vec<u8>> {
        let flags = file_flags(flags)?;
        let path = name(path)?;
        let mut len = 0;
        // SAFETY: a size query (`fcp` NULL); `path` is NUL-terminated and outlives the call.
        scm(unsafe {
            scardmanage::scm_file_get_properties(
                self.token(),
                reference as u32,
                path.as_ptr(),
                flags,
                std::ptr::null_mut(),
                &mut len,
            )
        })?;
        // The size query sent the SELECT already; a second one answers the same template, or a
        // longer one if the card changed in between, which the library reports as too small.
        let mut fcp = vec![0u8; len];
        // SAFETY: `fcp` is writable for `len` bytes.
        scm(unsafe {
            scardmanage::scm_file_get_properties(
                self.token(),
                reference as u32,
                path.as_ptr(),
                flags,
                fcp.as_mut_ptr(),
                &mut len,
            )
        })?;
        fcp.truncate(len);
        Ok(fcp)
    }

    /// Microsoft's Invalidate and Rehabilitate name a file without a reference type: by
    /// identifier or path, the kind every file has.
    fn invalidate(&self, path: &[u16], flags: i32) -> Result<()> {
        let flags = file_flags(flags)?;
        let path = name(path)?;
        // SAFETY: `path` is NUL-terminated and outlives the call.
        scm(unsafe { scardmanage::scm_file_invalidate(self.token(), SCM_REF_BY_ID, path.as_ptr(), flags) })
    }

    fn rehabilitate(&self, path: &[u16], flags: i32) -> Result<()> {
        let flags = file_flags(flags)?;
        let path = name(path)?;
        // SAFETY: `path` is NUL-terminated and outlives the call.
        scm(unsafe { scardmanage::scm_file_rehabilitate(self.token(), SCM_REF_BY_ID, path.as_ptr(), flags) })
    }

    fn open(&self, reference: i32, path: &[u16]) -> Result<i32> {
        let path = name(path)?;
        let mut file = 0;
        // SAFETY: `path` is NUL-terminated and outlives the call; `file` is writable.
        scm(unsafe { scardmanage::scm_file_open(self.token(), reference as u32, path.as_ptr(), &mut file) })?;
        Ok(file as i32)
    }

    /// Up to `wanted` bytes from the file position: as many library reads as it takes (each of
    /// at most [`READ_CHUNK`], so a large count asks for no more memory than the file has),
    /// stopping where one reads fewer than asked: the file's end, or a record of a record file.
    fn read(&self, file: i32, wanted: i32, flags: i32) -> std::result::Result<Vec<u8>, ReadFailure> {
        let plain = |failure: Failure| ReadFailure { failure, count: None };
        let wanted = usize::try_from(wanted).map_err(|_| plain(Failure::from(E_INVALIDARG)))?;
        let flags = file_flags(flags).map_err(plain)?;
        let mut data = Vec::new();
        loop {
            let start = data.len();
            let ask = (wanted - start).min(READ_CHUNK);
            data.resize(start + ask, 0);
            let mut got = ask;
            // SAFETY: `data[start..]` is writable for `ask` bytes (NULL asks for none).
            let hr = unsafe {
                let at = if ask == 0 { std::ptr::null_mut() } else { data.as_mut_ptr().add(start) };
                scardmanage::scm_file_read(self.token(), file as u32, at, &mut got, flags)
            };
            if hr < 0 {
                data.truncate(start);
                if start > 0 {
                    // As the library does within one call: the bytes read count, and the next
                    // call meets the failure.
                    return Ok(data);
                }
                let count = (hr == SCM_SCARD_W_EOF || hr == SCM_SCARD_E_INSUFFICIENT_BUFFER).then_some(got);
                return Err(ReadFailure { failure: on_file(Failure::from(HRESULT(hr))), count });
            }
            data.truncate(start + got);
            if got < ask || data.len() == wanted {
                return Ok(data);
            }
        }
    }

    fn seek(&self, file: i32, origin: i32, offset: i32) -> Result<()> {
        // SAFETY: `position` may be NULL; the library checks the rest.
        scm(unsafe {
            scardmanage::scm_file_seek(
                self.token(),
                file as u32,
                origin as u32,
                i64::from(offset),
                std::ptr::null_mut(),
            )
        })
        .map_err(on_file)
    }

    fn set_properties(&self, reference: i32, path: &[u16], flags: i32, table: &[u8]) -> Result<()> {
        let flags = file_flags(flags)?;
        let path = name(path)?;
        // SAFETY: `path` is NUL-terminated, `table` readable for its length (the library
        // answers E_NOTIMPL).
        scm(unsafe {
            scardmanage::scm_file_set_properties(
                self.token(),
                reference as u32,
                path.as_ptr(),
                flags,
                data_ptr(table),
                table.len(),
            )
        })
    }

    fn write(&self, file: i32, data: &[u8], flags: i32) -> Result<()> {
        let flags = file_flags(flags)?;
        // SAFETY: `data` is readable for its length and outlives the call.
        scm(unsafe {
            scardmanage::scm_file_write(self.token(), file as u32, data_ptr(data), data.len(), flags)
        })
        .map_err(on_file)
    }
}

impl Drop for FileAccess {
    fn drop(&mut self) {
        // SAFETY: the token is this object's own, released once, here, before the reference to
        // the manager goes (the fields drop after this).
        unsafe { scardmanage::scm_file_access_release(self.token()) };
    }
}

/// NULLs a caller's `[out]` interface pointer before the work, as COM wants on failure.
fn clear<T>(out: *mut *mut T) {
    if !out.is_null() {
        // SAFETY: non-NULL: the caller's writable pointer.
        unsafe { out.write(std::ptr::null_mut()) };
    }
}

impl ISCardFileAccess_Impl for FileAccess_Impl {
    unsafe fn ChangeDir(&self, reference: i32, name: *const u16) -> HRESULT {
        call::<FileAccess_Impl>(|| self.change_dir(reference, wide(name)))
    }

    unsafe fn Close(&self, file: i32) -> HRESULT {
        call::<FileAccess_Impl>(|| self.close(file))
    }

    unsafe fn Create(
        &self,
        reference: i32,
        name: *const u16,
        tlv: *mut c_void,
        flags: i32,
        data: *mut c_void,
    ) -> HRESULT {
        call::<FileAccess_Impl>(|| {
            let fcp = required_bytes(borrowed(&tlv))?;
            self.create_file(reference, wide(name), &fcp, flags, &optional_bytes(borrowed(&data))?)
        })
    }

    unsafe fn Delete(&self, reference: i32, name: *const u16, flags: i32) -> HRESULT {
        call::<FileAccess_Impl>(|| self.delete(reference, wide(name), flags))
    }

    unsafe fn Directory(&self, file_type: i32, list: *mut *mut SAFEARRAY) -> HRESULT {
        call::<FileAccess_Impl>(|| {
            clear(list);
            if list.is_null() {
                return Err(E_POINTER.into());
            }
            self.directory(file_type)
        })
    }

    unsafe fn GetCurrentDir(&self, path: *mut BSTR) -> HRESULT {
        call::<FileAccess_Impl>(|| {
            if path.is_null() {
                return Err(E_POINTER.into());
            }
            write(path, self.current_dir()?)
        })
    }

    unsafe fn GetFileCapabilities(
        &self,
        properties: *mut *mut c_void,
        count: *mut i32,
        flags: i32,
    ) -> HRESULT {
        call::<FileAccess_Impl>(|| {
            if properties.is_null() || count.is_null() {
                return Err(E_POINTER.into());
            }
            self.file_capabilities(flags)
        })
    }

    unsafe fn GetProperties(
        &self,
        reference: i32,
        name: *const u16,
        flags: i32,
        tlv: *mut *mut c_void,
    ) -> HRESULT {
        call::<FileAccess_Impl>(|| {
            if tlv.is_null() {
                return Err(E_POINTER.into());
            }
            let fcp = self.properties(reference, wide(name), flags)?;
            give(tlv, &fcp)
        })
    }

    unsafe fn Invalidate(&self, name: *const u16, flags: i32) -> HRESULT {
        call::<FileAccess_Impl>(|| self.invalidate(wide(name), flags))
    }

    unsafe fn Open(&self, reference: i32, name: *const u16, file: *mut i32) -> HRESULT {
        call::<FileAccess_Impl>(|| {
            if file.is_null() {
                return Err(E_POINTER.into());
            }
            write(file, self.open(reference, wide(name))?)
        })
    }

    unsafe fn Read(&self, file: i32, count: *mut i32, flags: i32, buffer: *mut *mut c_void) -> HRESULT {
        call::<FileAccess_Impl>(|| {
            clear(buffer);
            if count.is_null() || buffer.is_null() {
                return Err(E_POINTER.into());
            }
            // SAFETY: non-NULL: the caller's [in, out] LONG.
            let wanted = unsafe { count.read() };
            match self.read(file, wanted, flags) {
                Ok(data) => {
                    let made = byte_buffer::new_buffer(&data)?;
                    write(count, data.len() as i32)?;
                    write(buffer, made.into_raw())
                }
                Err(ReadFailure { failure, count: read }) => {
                    if let Some(read) = read {
                        write(count, read as i32)?;
                    }
                    Err(failure)
                }
            }
        })
    }

    unsafe fn Rehabilitate(&self, name: *const u16, flags: i32) -> HRESULT {
        call::<FileAccess_Impl>(|| self.rehabilitate(wide(name), flags))
    }

    unsafe fn Seek(&self, file: i32, origin: i32, offset: i32) -> HRESULT {
        call::<FileAccess_Impl>(|| self.seek(file, origin, offset))
    }

    unsafe fn SetProperties(
        &self,
        reference: i32,
        name: *const u16,
        flags: i32,
        table: *mut c_void,
    ) -> HRESULT {
        call::<FileAccess_Impl>(|| {
            self.set_properties(reference, wide(name), flags, &optional_bytes(borrowed(&table))?)
        })
    }

    unsafe fn Write(&self, file: i32, data: *mut c_void, flags: i32) -> HRESULT {
        call::<FileAccess_Impl>(|| self.write(file, &required_bytes(borrowed(&data))?, flags))
    }
}

impl Automation for FileAccess_Impl {
    const IID: GUID = ISCardFileAccess::IID;

    fn invoke(&self, id: i32, args: &Args<'_>) -> Result<VARIANT> {
        let none = VARIANT::default();
        match id {
            1 => {
                args.count(2, 2)?;
                self.change_dir(args.i32(0)?, &args.bstr(1)?).map(|()| none)
            }
            2 => {
                args.count(1, 1)?;
                self.close(args.i32(0)?).map(|()| none)
            }
            3 => {
                args.count(4, 5)?;
                let fcp = arg_bytes_required(args, 2)?;
                let data = arg_bytes(args, 4)?.unwrap_or_default();
                self.create_file(args.i32(0)?, &args.bstr(1)?, &fcp, args.i32(3)?, &data).map(|()| none)
            }
            4 => {
                args.count(3, 3)?;
                self.delete(args.i32(0)?, &args.bstr(1)?, args.i32(2)?).map(|()| none)
            }
            5 => {
                args.count(1, 2)?;
                self.directory(args.i32(0)?).map(|()| none)
            }
            6 => {
                // The path through a variable passed by reference, or as the result when left out.
                args.count(0, 1)?;
                let out = (args.len() == 1).then(|| args.out(0)).transpose()?;
                out_or_result(out, self.current_dir()?, Out::set_bstr, |path| Ok(VARIANT::from(path)))
            }
            7 => {
                args.count(3, 3)?;
                self.file_capabilities(args.i32(2)?).map(|()| none)
            }
            8 => {
                args.count(3, 4)?;
                let result = BufferResult::new(args, 3)?;
                result.give(&self.properties(args.i32(0)?, &args.bstr(1)?, args.i32(2)?)?)
            }
            9 => {
                args.count(2, 2)?;
                self.invalidate(&args.bstr(0)?, args.i32(1)?).map(|()| none)
            }
            10 => {
                args.count(2, 3)?;
                let out = (args.len() == 3).then(|| args.out(2)).transpose()?;
                out_or_result(out, self.open(args.i32(0)?, &args.bstr(1)?)?, Out::set_i32, |file| {
                    Ok(VARIANT::from(file))
                })
            }
            11 => {
                args.count(3, 4)?;
                // The count comes back through a variable; a count given as a value has none.
                let count_out = args.out(1).ok();
                let buffer_out = (args.len() == 4).then(|| args.out(3)).transpose()?;
                match self.read(args.i32(0)?, args.i32(1)?, args.i32(2)?) {
                    Ok(data) => {
                        let made = byte_buffer::new_buffer(&data)?;
                        if let Some(count_out) = count_out {
                            count_out.set_i32(data.len() as i32);
                        }
                        buffer_out_or_result(buffer_out, &made)
                    }
                    Err(ReadFailure { failure, count }) => {
                        if let (Some(count), Some(count_out)) = (count, count_out) {
                            count_out.set_i32(count as i32);
                        }
                        Err(failure)
                    }
                }
            }
            12 => {
                args.count(2, 2)?;
                self.rehabilitate(&args.bstr(0)?, args.i32(1)?).map(|()| none)
            }
            13 => {
                args.count(3, 3)?;
                self.seek(args.i32(0)?, args.i32(1)?, args.i32(2)?).map(|()| none)
            }
            14 => {
                args.count(4, 4)?;
                let table = arg_bytes(args, 3)?.unwrap_or_default();
                self.set_properties(args.i32(0)?, &args.bstr(1)?, args.i32(2)?, &table).map(|()| none)
            }
            15 => {
                args.count(3, 3)?;
                let data = arg_bytes_required(args, 1)?;
                self.write(args.i32(0)?, &data, args.i32(2)?).map(|()| none)
            }
            _ => Err(Failure::unknown_member()),
        }
    }
}

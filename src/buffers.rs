//! The ABI's rules for what crosses the boundary as memory: caller-owned output buffers
//! `(buf, *len)` and NUL-terminated reader names in UTF-8 or UTF-16.

use std::ffi::{c_char, CString};

use crate::hresult::*;
use crate::scard::Result;

/// The longest reader name accepted, in code units. pcsc-lite's limit is 128 bytes; Windows
/// names are shorter still. The bound also limits how far an unterminated string is read.
pub(crate) const MAX_NAME_UNITS: usize = 1024;

/// Copies `data` (terminating NULs included) into a caller's buffer: a NULL buffer asks for the
/// size, a short one gets INSUFFICIENT_BUFFER with the size needed; `*len` always ends as that
/// size.
///
/// # Safety
/// A non-NULL `buf` must be writable for `*len` bytes.
pub unsafe fn write_out(data: &[u8], buf: *mut u8, len: &mut usize) -> Result<()> {
    let needed = data.len();
    let fits = *len >= needed;
    *len = needed;
    if buf.is_null() {
        return Ok(());
    }
    if !fits {
        return Err(SCM_SCARD_E_INSUFFICIENT_BUFFER);
    }
    // SAFETY: the caller vouches for `*len >= needed` writable bytes; Rust data never overlaps
    // a caller's buffer.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, needed) };
    Ok(())
}

/// The units of a NUL-terminated string, read up to `MAX_NAME_UNITS`; empty names, and names
/// with no NUL within the bound, are invalid.
///
/// # Safety
/// `name` must be non-NULL and readable up to its NUL or the bound, whichever comes first.
unsafe fn terminated_units<'a, T: Copy + Default + PartialEq>(name: *const T) -> Result<&'a [T]> {
    let mut len = 0;
    // SAFETY: every unit read is at or before the terminator, within the bound.
    while unsafe { *name.add(len) } != T::default() {
        len += 1;
        if len == MAX_NAME_UNITS {
            return Err(SCM_E_INVALIDARG);
        }
    }
    if len == 0 {
        return Err(SCM_E_INVALIDARG);
    }
    // SAFETY: the `len` units before the terminator were just read.
    Ok(unsafe { std::slice::from_raw_parts(name, len) })
}

/// A reader name given as UTF-8.
///
/// # Safety
/// A non-NULL `name` must be readable up to its NUL or `MAX_NAME_UNITS` bytes.
pub unsafe fn reader_name_utf8(name: *const c_char) -> Result<CString> {
    if name.is_null() {
        return Err(SCM_E_POINTER);
    }
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { terminated_units(name.cast::<u8>()) }?;
    let text = std::str::from_utf8(bytes).map_err(|_| SCM_E_INVALIDARG)?;
    CString::new(text).map_err(|_| SCM_E_INVALIDARG)
}

/// A reader name given as UTF-16 (a BSTR's characters); unpaired surrogates are invalid.
///
/// # Safety
/// A non-NULL `name` must be readable up to its NUL or `MAX_NAME_UNITS` units.
pub unsafe fn reader_name_utf16(name: *const u16) -> Result<CString> {
    if name.is_null() {
        return Err(SCM_E_POINTER);
    }
    // SAFETY: forwarded from the caller.
    let units = unsafe { terminated_units(name) }?;
    let text = String::from_utf16(units).map_err(|_| SCM_E_INVALIDARG)?;
    CString::new(text).map_err(|_| SCM_E_INVALIDARG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_query_short_buffer_and_copy() {
        let data = b"abc\0";
        let mut len = 0;
        assert_eq!(unsafe { write_out(data, std::ptr::null_mut(), &mut len) }, Ok(()));
        assert_eq!(len, 4);

        let mut small = [0xAAu8; 3];
        let mut len = small.len();
        assert_eq!(
            unsafe { write_out(data, small.as_mut_ptr(), &mut len) },
            Err(SCM_SCARD_E_INSUFFICIENT_BUFFER)
        );
        assert_eq!(len, 4);
        assert_eq!(small, [0xAA; 3], "nothing is written to a short buffer");

        let mut big = [0xAAu8; 8];
        let mut len = usize::MAX;
        assert_eq!(unsafe { write_out(data, big.as_mut_ptr(), &mut len) }, Ok(()));
        assert_eq!(len, 4);
        assert_eq!(&big[..5], b"abc\0\xAA");
    }

    #[test]
    fn utf8_names() {
        assert_eq!(unsafe { reader_name_utf8(c"Lab A 00 00".as_ptr()) }.unwrap().as_bytes(), b"Lab A 00 00");
        assert_eq!(unsafe { reader_name_utf8(std::ptr::null()) }, Err(SCM_E_POINTER));
        assert_eq!(unsafe { reader_name_utf8(c"".as_ptr()) }, Err(SCM_E_INVALIDARG));
        assert_eq!(unsafe { reader_name_utf8(c"\xC3\x28".as_ptr()) }, Err(SCM_E_INVALIDARG));
        let long = CString::new(vec![b'x'; MAX_NAME_UNITS]).unwrap();
        assert_eq!(unsafe { reader_name_utf8(long.as_ptr()) }, Err(SCM_E_INVALIDARG));
        let longest = CString::new(vec![b'x'; MAX_NAME_UNITS - 1]).unwrap();
        assert!(unsafe { reader_name_utf8(longest.as_ptr()) }.is_ok());
    }

    #[test]
    fn utf16_names() {
        let name: Vec<u16> = "Lab é 00 00\0".encode_utf16().collect();
        assert_eq!(unsafe { reader_name_utf16(name.as_ptr()) }.unwrap().to_str().unwrap(), "Lab é 00 00");
        assert_eq!(unsafe { reader_name_utf16(std::ptr::null()) }, Err(SCM_E_POINTER));
        assert_eq!(unsafe { reader_name_utf16([0u16].as_ptr()) }, Err(SCM_E_INVALIDARG));
        assert_eq!(unsafe { reader_name_utf16([0x41, 0xD800, 0x41, 0].as_ptr()) }, Err(SCM_E_INVALIDARG));
        assert_eq!(unsafe { reader_name_utf16([0xDC00, 0].as_ptr()) }, Err(SCM_E_INVALIDARG));
    }
}

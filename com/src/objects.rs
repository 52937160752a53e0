//! What the three objects ISCardManage creates share (file_access.rs, verify.rs, auth.rs): the
//! translation of Microsoft's `SCARD_FLAGS` and references into the library's words, byte
//! buffers in and out, and the wiping of codes.

use std::ffi::{c_void, CString};
use windows::core::{IUnknown, Interface, HRESULT};
use windows::Win32::Foundation::{DISP_E_TYPEMISMATCH, E_INVALIDARG, E_POINTER};
use windows::Win32::System::Variant::VARIANT;

use crate::byte_buffer::{self, IByteBuffer};
use crate::dispatch::{object_variant, wipe, write, Args, Failure, Out, Result};
use scardmanage::{SCM_E_NOTIMPL, SCM_SCARD_W_WRONG_CHV, SCM_TRIES_UNKNOWN};

/// `SCARD_FLAGS` (objects.idl): the low byte is the library's own flags word, passed through.
const LIBRARY_FLAGS: u32 = 0xFF;
/// `SC_FL_IHV_LOCAL`: the reference is specific to the current DF (bit 8 of P2).
const LOCAL: u32 = 0x0100;
/// Microsoft's flags that no library function stands behind, with what each asked for.
const NOT_IMPLEMENTED: [(u32, &str); 4] = [
    (0x0200, "SC_FL_IHV_ENABLE: ENABLE VERIFICATION REQUIREMENT is not implemented"),
    (0x0400, "SC_FL_IHV_DISABLE: DISABLE VERIFICATION REQUIREMENT is not implemented"),
    (0x1000, "SC_FL_SECURE_MESSAGING: secure messaging is not implemented"),
    (0x2000, "SC_FL_PREALLOCATED: creating a file with content is not implemented"),
];

/// A method's `SCARD_FLAGS`, checked: the library's flags, and whether `SC_FL_IHV_LOCAL` is set.
fn split_flags(flags: i32) -> Result<(u32, bool)> {
    let flags = flags as u32;
    if let Some((_, what)) = NOT_IMPLEMENTED.iter().find(|(bit, _)| flags & bit != 0) {
        return Err(Failure::from(HRESULT(SCM_E_NOTIMPL)).context(*what));
    }
    let known = NOT_IMPLEMENTED.iter().fold(LIBRARY_FLAGS | LOCAL, |all, (bit, _)| all | bit);
    if flags & !known != 0 {
        return Err(Failure::from(E_INVALIDARG).context("unknown SCARD_FLAGS bits"));
    }
    Ok((flags & LIBRARY_FLAGS, flags & LOCAL != 0))
}

/// The flags of a file method: a file has no local or global reference.
pub(crate) fn file_flags(flags: i32) -> Result<u32> {
    match split_flags(flags)? {
        (library, false) => Ok(library),
        (_, true) => Err(Failure::from(E_INVALIDARG).context("SC_FL_IHV_LOCAL is for codes")),
    }
}

/// The reference (P2) and library flags of a code method: `SC_FL_IHV_LOCAL` sets bit 8 of the
/// reference, as ISO/IEC 7816-4 marks a DF-specific one. A reference out of 0..=255 goes to the
/// library as it is (a negative one as a huge number), which refuses it.
pub(crate) fn code_reference(reference: i32, flags: i32) -> Result<(u32, u32)> {
    let (library, local) = split_flags(flags)?;
    let reference = reference as u32;
    let reference = if local && reference <= 0xFF { reference | 0x80 } else { reference };
    Ok((reference, library))
}

/// A file name or path from a BSTR, as the library takes it (UTF-8, NUL-terminated); text that
/// is not a name (an unpaired surrogate, an embedded NUL) is an invalid argument.
pub(crate) fn name(text: &[u16]) -> Result<CString> {
    let text = String::from_utf16(text).map_err(|_| Failure::from(E_INVALIDARG))?;
    CString::new(text).map_err(|_| Failure::from(E_INVALIDARG))
}

/// A COM `[in] IByteBuffer *` from a vtable caller, borrowed for the call.
pub(crate) fn borrowed(raw: &*mut c_void) -> Option<&IByteBuffer> {
    // SAFETY: a non-NULL [in] interface pointer is a live IByteBuffer the caller holds for the
    // call; borrowing it takes no reference.
    unsafe { IByteBuffer::from_raw_borrowed(raw) }
}

/// The bytes of a buffer the caller must give: `Nothing` / NULL is `E_POINTER`.
pub(crate) fn required_bytes(buffer: Option<&IByteBuffer>) -> Result<Vec<u8>> {
    byte_buffer::read_all(buffer.ok_or(Failure::from(E_POINTER))?)
}

/// The bytes of a buffer that may be left out (`Nothing` / NULL): none.
pub(crate) fn optional_bytes(buffer: Option<&IByteBuffer>) -> Result<Vec<u8>> {
    buffer.map_or(Ok(Vec::new()), byte_buffer::read_all)
}

/// An `[in] IByteBuffer *` argument of an `Invoke`, as bytes: the buffer's content or, for a
/// script that has no buffer at hand, bytes as IByteBuffer's own late-bound Write takes them (a
/// string of byte-valued characters such as "1234", a byte array). `Nothing` or left out: none.
pub(crate) fn arg_bytes(args: &Args<'_>, pos: usize) -> Result<Option<Vec<u8>>> {
    match args.object_opt::<IByteBuffer>(pos) {
        Ok(Some(buffer)) => byte_buffer::read_all(&buffer).map(Some),
        Ok(None) => Ok(None),
        Err(Failure::Dispatch { hr, .. }) if hr == DISP_E_TYPEMISMATCH => args.bytes(pos).map(Some),
        Err(failure) => Err(failure),
    }
}

/// A buffer argument the method needs: `Nothing` is `E_POINTER`, as through the vtable.
pub(crate) fn arg_bytes_required(args: &Args<'_>, pos: usize) -> Result<Vec<u8>> {
    arg_bytes(args, pos)?.ok_or(Failure::from(E_POINTER))
}

/// Gives `bytes` to an `[in, out] IByteBuffer **`: the caller's buffer, when it passed one,
/// gets them as its whole content (and keeps its identity, which a script's variable holds);
/// else a new buffer is written to `*out`.
pub(crate) fn fill_or_new(existing: Option<&IByteBuffer>, bytes: &[u8]) -> Result<Option<IByteBuffer>> {
    match existing {
        Some(buffer) => {
            byte_buffer::replace(buffer, bytes)?;
            Ok(None)
        }
        None => byte_buffer::new_buffer(bytes).map(Some),
    }
}

/// The result of an `[in, out] IByteBuffer **` method through the vtable: the caller's buffer
/// refilled, or a new one written to `*buffer`.
pub(crate) fn give(buffer: *mut *mut c_void, bytes: &[u8]) -> Result<()> {
    // SAFETY: checked non-NULL by the callers: NULL or a buffer the caller holds.
    let existing = unsafe { &*buffer };
    match fill_or_new(borrowed(existing), bytes)? {
        Some(made) => write(buffer, made.into_raw()),
        None => Ok(()),
    }
}

/// A trailing `[out]` of an `Invoke`: into the caller's variable when one was passed, else the
/// call's result (`h = fa.Open(...)` as well as `fa.Open ..., h`).
pub(crate) fn out_or_result<'a, T>(
    out: Option<Out<'a>>,
    value: T,
    set: impl FnOnce(Out<'a>, T),
    result: impl FnOnce(T) -> Result<VARIANT>,
) -> Result<VARIANT> {
    match out {
        Some(out) => {
            set(out, value);
            Ok(VARIANT::default())
        }
        None => result(value),
    }
}

/// A new buffer given to a late-bound caller (see [`out_or_result`]), as VBScript's `Set` wants.
pub(crate) fn buffer_out_or_result(out: Option<Out<'_>>, buffer: &IByteBuffer) -> Result<VARIANT> {
    out_or_result(
        out,
        buffer.cast::<IUnknown>()?,
        |out, made| out.set_object(&made),
        |made| object_variant(&made),
    )
}

/// Argument `pos` of an `Invoke` of an `[in, out] IByteBuffer **` method, checked before the
/// work: the caller's buffer (refilled with the result), a variable to put a new buffer in, or
/// left out (the new buffer is the call's result).
pub(crate) struct BufferResult<'a> {
    existing: Option<IByteBuffer>,
    out: Option<Out<'a>>,
}

impl<'a> BufferResult<'a> {
    pub(crate) fn new(args: &'a Args<'_>, pos: usize) -> Result<Self> {
        let given = args.len() > pos;
        let existing = if given { args.object_opt::<IByteBuffer>(pos)? } else { None };
        let out = if given && existing.is_none() { Some(args.out(pos)?) } else { None };
        Ok(BufferResult { existing, out })
    }

    /// The caller's buffer, if it passed one (ICC_Auth reads its input from it).
    pub(crate) fn existing(&self) -> Option<&IByteBuffer> {
        self.existing.as_ref()
    }

    pub(crate) fn give(self, bytes: &[u8]) -> Result<VARIANT> {
        match fill_or_new(self.existing.as_ref(), bytes)? {
            Some(made) => buffer_out_or_result(self.out, &made),
            None => Ok(VARIANT::default()),
        }
    }
}

/// The context a code's failure gets: how many tries the card says are left. Microsoft's
/// methods have no output for it, so the description carries it (VBScript's Err.Description).
pub(crate) fn tries_context(failure: Failure, tries_left: u32) -> Failure {
    match failure {
        Failure::Call { hr, .. } if hr.0 == SCM_SCARD_W_WRONG_CHV => failure.context(match tries_left {
            SCM_TRIES_UNKNOWN => "the card did not say how many tries are left".to_string(),
            1 => "1 try left".to_string(),
            n => format!("{n} tries left"),
        }),
        failure => failure,
    }
}

/// A copy of a code (PIN, PUK) made to hand it to the library: overwritten when dropped, so it
/// does not linger in freed memory. The caller's own buffer is the caller's to wipe.
pub(crate) struct Secret(pub(crate) Vec<u8>);

impl Drop for Secret {
    fn drop(&mut self) {
        // The whole allocation: past the length may lie bytes of the code too (never a
        // reallocation: the capacity is there already).
        let capacity = self.0.capacity();
        self.0.resize(capacity, 0);
        wipe(&mut self.0);
    }
}

/// A pointer for the library to read `len` bytes at: NULL for none (the library's rule for an
/// empty input), since an empty vector's pointer is dangling.
pub(crate) fn data_ptr(bytes: &[u8]) -> *const u8 {
    if bytes.is_empty() {
        std::ptr::null()
    } else {
        bytes.as_ptr()
    }
}

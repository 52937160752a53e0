//! The machinery every object of the server shares: `IDispatch` for a dual interface (names and
//! type information from the type library embedded in the DLL, `Invoke` by DISPID with argument
//! conversion), error information (`ISupportErrorInfo`, `SetErrorInfo`, `EXCEPINFO`), and the
//! report of a method's outcome as its HRESULT.
//!
//! An object's `X_Impl` (the type `#[implement]` generates) implements [`Automation`] (the IID
//! of its dual interface and a `match` from DISPID to method) and gets `IDispatch` and
//! `ISupportErrorInfo` from the blanket implementations here: its interface derives from
//! `IAutomation`, and `IErrorSupport` is listed in its `#[implement(...)]`.
//!
//! `IAutomation` and `IErrorSupport` are `IDispatch` and `ISupportErrorInfo` (same IIDs, same
//! vtables) declared here rather than taken from the `windows` crate, whose generated
//! `IDispatch` entry points write through the caller's out-pointers without a NULL check
//! (`GetTypeInfoCount(NULL)` would crash the caller); these check every pointer.

// The COM method names as the vtables spell them; IDispatch::Invoke's own eight arguments.
#![allow(non_snake_case, clippy::too_many_arguments)]

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use windows::core::{interface, IUnknown, IUnknown_Vtbl, Interface, BSTR, GUID, HRESULT, PCWSTR};
use windows::Win32::Foundation::{
    DISP_E_BADPARAMCOUNT, DISP_E_EXCEPTION, DISP_E_MEMBERNOTFOUND, DISP_E_NONAMEDARGS, DISP_E_PARAMNOTFOUND,
    DISP_E_TYPEMISMATCH, DISP_E_UNKNOWNINTERFACE, E_INVALIDARG, E_POINTER, S_FALSE, S_OK,
};
use windows::Win32::System::Com::{
    IDispatch, IErrorInfo, ITypeInfo, ITypeLib, SetErrorInfo, DISPATCH_METHOD, DISPATCH_PROPERTYGET,
    DISPPARAMS, EXCEPINFO,
};
use windows::Win32::System::Ole::{
    CreateErrorInfo, LoadTypeLibEx, SafeArrayAccessData, SafeArrayGetDim, SafeArrayUnaccessData, REGKIND_NONE,
};
use windows::Win32::System::Variant::{
    VariantChangeType, VARENUM, VARIANT, VAR_CHANGE_FLAGS, VT_ARRAY, VT_BSTR, VT_BYREF, VT_DISPATCH,
    VT_EMPTY, VT_ERROR, VT_I4, VT_I8, VT_NULL, VT_UI1, VT_UNKNOWN, VT_VARIANT,
};

use crate::server::{guard, module_path};

/// The source of every error this server reports (`Err.Source` in VBScript): its ProgID.
pub(crate) const SOURCE: &str = "SCardCOM.SCardManage";

/// More arguments than any method of the server takes (5 at most, in the IDL): an `Invoke`
/// with more is refused before `rgvarg` is touched, so a wild `cArgs` cannot make a slice past
/// the caller's array (nor one too large to describe on a 32-bit target).
const MOST_ARGS: u32 = 16;

/// `IDispatch` (IID 00020400-0000-0000-C000-000000000046), with NULL-checked entry points.
#[interface("00020400-0000-0000-C000-000000000046")]
pub(crate) unsafe trait IAutomation: IUnknown {
    fn GetTypeInfoCount(&self, count: *mut u32) -> HRESULT;
    fn GetTypeInfo(&self, index: u32, lcid: u32, info: *mut *mut c_void) -> HRESULT;
    fn GetIDsOfNames(
        &self,
        iid: *const GUID,
        names: *const PCWSTR,
        count: u32,
        lcid: u32,
        ids: *mut i32,
    ) -> HRESULT;
    fn Invoke(
        &self,
        id: i32,
        iid: *const GUID,
        lcid: u32,
        flags: u16,
        params: *mut DISPPARAMS,
        result: *mut VARIANT,
        exception: *mut EXCEPINFO,
        arg_error: *mut u32,
    ) -> HRESULT;
}

/// `ISupportErrorInfo` (IID DF0B3D60-548F-101B-8E65-08002B2BD119).
#[interface("DF0B3D60-548F-101B-8E65-08002B2BD119")]
pub(crate) unsafe trait IErrorSupport: IUnknown {
    fn InterfaceSupportsErrorInfo(&self, iid: *const GUID) -> HRESULT;
}

/// What an object of the server tells the shared `IDispatch` and error machinery.
pub(crate) trait Automation {
    /// The object's dual interface: its type information is what `IDispatch` describes, and
    /// the GUID of the error information it sets.
    const IID: GUID;
    /// Runs method `id` (its DISPID in the IDL) with a late-bound caller's arguments; the
    /// value is the method's `[out, retval]` (VT_EMPTY for none).
    fn invoke(&self, id: i32, args: &Args<'_>) -> Result<VARIANT>;
}

/// Why a method or an `Invoke` failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The method ran and failed: its HRESULT (the library's), with optional words of context
    /// after the library's message. Reported with error information.
    Call { hr: HRESULT, context: Option<String> },
    /// `Invoke` could not make a call of the arguments (`DISP_E_*`), and which argument (index
    /// in `rgvarg`) was wrong. Returned by `Invoke` as it is, as OLE Automation does.
    Dispatch { hr: HRESULT, arg: Option<u32> },
}

pub(crate) type Result<T> = std::result::Result<T, Failure>;

impl From<HRESULT> for Failure {
    fn from(hr: HRESULT) -> Self {
        Failure::Call { hr, context: None }
    }
}

impl From<windows::core::Error> for Failure {
    fn from(error: windows::core::Error) -> Self {
        error.code().into()
    }
}

impl Failure {
    /// Adds a few words saying what was being done, after the library's message.
    pub(crate) fn context(self, words: impl Into<String>) -> Self {
        match self {
            Failure::Call { hr, .. } => Failure::Call { hr, context: Some(words.into()) },
            dispatch => dispatch,
        }
    }

    /// `Invoke` with a DISPID the object does not have.
    pub(crate) fn unknown_member() -> Self {
        Failure::Dispatch { hr: DISP_E_MEMBERNOTFOUND, arg: None }
    }
}

/// A `scm_*` function's result as a `Result`: its HRESULT unchanged on failure.
pub(crate) fn scm(hr: i32) -> Result<()> {
    if hr < 0 {
        Err(HRESULT(hr).into())
    } else {
        Ok(())
    }
}

/// The library's English text for an HRESULT (`scm_error_message`), for any value.
fn message(hr: HRESULT) -> String {
    let text = scardmanage::scm_error_message(hr.0);
    // SAFETY: scm_error_message returns a static NUL-terminated string, never NULL.
    unsafe { std::ffi::CStr::from_ptr(text) }.to_string_lossy().into_owned()
}

/// Sets this thread's error information for a failed call (description = the library's message
/// plus context, source = the ProgID, GUID = the interface), and returns the description.
fn set_error_info(iid: &GUID, hr: HRESULT, context: Option<&str>) -> String {
    let mut description = message(hr);
    if let Some(context) = context {
        description.push_str(" (");
        description.push_str(context);
        description.push(')');
    }
    let description_w: Vec<u16> = description.encode_utf16().chain([0]).collect();
    let source_w: Vec<u16> = SOURCE.encode_utf16().chain([0]).collect();
    // SAFETY: the strings are NUL-terminated and outlive the calls, which copy them. A failure
    // to make error information (out of memory) leaves the HRESULT to speak alone.
    unsafe {
        if let Ok(info) = CreateErrorInfo() {
            let _ = info.SetGUID(iid);
            let _ = info.SetSource(PCWSTR(source_w.as_ptr()));
            let _ = info.SetDescription(PCWSTR(description_w.as_ptr()));
            if let Ok(info) = info.cast::<IErrorInfo>() {
                let _ = SetErrorInfo(0, &info);
            }
        }
    }
    description
}

/// The HRESULT a vtable method returns for `body`'s outcome: S_OK, or the failure's HRESULT
/// with this thread's error information set (for `T::IID`). A panic is `E_UNEXPECTED`.
pub(crate) fn call<T: Automation>(body: impl FnOnce() -> Result<()>) -> HRESULT {
    guard(|| match body() {
        Ok(()) => {
            clear_error_info();
            S_OK
        }
        Err(Failure::Call { hr, context }) => {
            set_error_info(&T::IID, hr, context.as_deref());
            hr
        }
        Err(Failure::Dispatch { hr, .. }) => {
            clear_error_info();
            hr
        }
    })
}

/// A call that sets no error information of its own (a success, or a failure reported by its
/// HRESULT alone) clears the thread's: a caller that asks GetErrorInfo after it must not read
/// an earlier call's description as this one's.
fn clear_error_info() {
    // SAFETY: SetErrorInfo(0, NULL) clears the thread's error object; nothing is passed.
    let _ = unsafe { SetErrorInfo(0, None) };
}

/// A BSTR (or any NUL-terminated UTF-16 string) from a vtable caller, without its NUL; NULL is
/// the empty string, as BSTR semantics say.
pub(crate) fn wide<'a>(text: *const u16) -> &'a [u16] {
    if text.is_null() {
        return &[];
    }
    // SAFETY: non-NULL: a NUL-terminated UTF-16 string the caller keeps alive for the call
    // (every BSTR is NUL-terminated): its characters up to the NUL are readable.
    unsafe {
        let len = PCWSTR(text).len();
        std::slice::from_raw_parts(text, len)
    }
}

/// Writes `value` through a caller's out-pointer: `E_POINTER` when it is NULL.
pub(crate) fn write<T>(out: *mut T, value: T) -> Result<()> {
    if out.is_null() {
        return Err(E_POINTER.into());
    }
    // SAFETY: non-NULL; the caller of the COM method passes a writable T, as the method's
    // signature says. Written without reading (and dropping) what was there: an [out] is
    // uninitialized on entry.
    unsafe { out.write(value) };
    Ok(())
}

/// Returns `object` through a caller's `void **` as interface `iid` (QueryInterface): how a
/// `[out, retval] ISomething **` result is given to a vtable caller. `*out` is NULL on failure.
pub(crate) fn write_interface(out: *mut *mut c_void, object: &IUnknown, iid: &GUID) -> Result<()> {
    if out.is_null() {
        return Err(E_POINTER.into());
    }
    // SAFETY: `out` is non-NULL and writable (the method's signature); `query` writes it
    // (NULL on failure) and AddRefs what it writes.
    unsafe { object.query(iid, out) }.ok().map_err(Failure::from)
}

/// A late-bound result holding an object: as `VT_DISPATCH` (every object here is dual), which
/// is what VBScript's `Set x = ...` wants.
pub(crate) fn object_variant(object: &IUnknown) -> Result<VARIANT> {
    Ok(VARIANT::from(object.cast::<IDispatch>()?))
}

/// The type library embedded in this DLL (resource TYPELIB 1). oleaut32 caches loaded type
/// libraries by path, so a call after the first costs a lookup.
pub(crate) fn type_library() -> windows::core::Result<ITypeLib> {
    let mut path = module_path()?;
    path.push(0);
    // SAFETY: `path` is NUL-terminated and outlives the call. REGKIND_NONE: only loads.
    unsafe { LoadTypeLibEx(PCWSTR(path.as_ptr()), REGKIND_NONE) }
}

/// The type information of interface `iid` in the embedded type library.
fn type_info(iid: &GUID) -> windows::core::Result<ITypeInfo> {
    // SAFETY: a plain call on a live type library with a valid GUID reference.
    unsafe { type_library()?.GetTypeInfoOfGuid(iid) }
}

impl<T> IAutomation_Impl for T
where
    T: windows::core::IUnknownImpl + Automation,
{
    unsafe fn GetTypeInfoCount(&self, count: *mut u32) -> HRESULT {
        guard(|| {
            if count.is_null() {
                E_POINTER
            } else {
                // SAFETY: checked non-NULL; the caller passes a writable UINT.
                unsafe { count.write(1) };
                S_OK
            }
        })
    }

    unsafe fn GetTypeInfo(&self, index: u32, _lcid: u32, info: *mut *mut c_void) -> HRESULT {
        guard(|| {
            if info.is_null() {
                return E_POINTER;
            }
            // SAFETY: checked non-NULL; NULL until an interface is written, as COM wants.
            unsafe { info.write(std::ptr::null_mut()) };
            if index != 0 {
                return windows::Win32::Foundation::DISP_E_BADINDEX;
            }
            match type_info(&<T as Automation>::IID) {
                // SAFETY: `info` is checked; the reference moves to the caller.
                Ok(type_info) => unsafe {
                    info.write(type_info.into_raw());
                    S_OK
                },
                Err(error) => error.code(),
            }
        })
    }

    unsafe fn GetIDsOfNames(
        &self,
        iid: *const GUID,
        names: *const PCWSTR,
        count: u32,
        _lcid: u32,
        ids: *mut i32,
    ) -> HRESULT {
        guard(|| {
            // SAFETY: `iid` is read only when non-NULL, as a GUID reference the caller passes.
            if !iid.is_null() && unsafe { *iid } != GUID::zeroed() {
                return DISP_E_UNKNOWNINTERFACE;
            }
            if count == 0 {
                return S_OK;
            }
            if names.is_null() || ids.is_null() {
                return E_POINTER;
            }
            match type_info(&<T as Automation>::IID) {
                // SAFETY: `names` and `ids` are non-NULL arrays of `count` elements (the
                // caller's contract); ITypeInfo reads the names and writes the ids.
                Ok(type_info) => match unsafe { type_info.GetIDsOfNames(names, count, ids) } {
                    Ok(()) => S_OK,
                    Err(error) => error.code(),
                },
                Err(error) => error.code(),
            }
        })
    }

    unsafe fn Invoke(
        &self,
        id: i32,
        iid: *const GUID,
        _lcid: u32,
        flags: u16,
        params: *mut DISPPARAMS,
        result: *mut VARIANT,
        exception: *mut EXCEPINFO,
        arg_error: *mut u32,
    ) -> HRESULT {
        guard(|| {
            // Only a method's own failure below sets error information (as `call` does).
            clear_error_info();
            // SAFETY: `iid` is read only when non-NULL (a GUID reference from the caller).
            if !iid.is_null() && unsafe { *iid } != GUID::zeroed() {
                return DISP_E_UNKNOWNINTERFACE;
            }
            // Methods only: VBScript asks for a method result as METHOD|PROPERTYGET.
            if flags & (DISPATCH_METHOD.0 | DISPATCH_PROPERTYGET.0) == 0 {
                return DISP_E_MEMBERNOTFOUND;
            }
            if params.is_null() {
                return E_INVALIDARG;
            }
            // SAFETY: non-NULL; the caller passes a DISPPARAMS for the duration of the call.
            let params = unsafe { &*params };
            if params.cNamedArgs > 0 {
                return DISP_E_NONAMEDARGS;
            }
            if params.cArgs > MOST_ARGS {
                return DISP_E_BADPARAMCOUNT;
            }
            let vars: &[VARIANT] = match (params.cArgs, params.rgvarg.is_null()) {
                (0, _) => &[],
                (_, true) => return E_INVALIDARG,
                // SAFETY: rgvarg holds cArgs VARIANTs, alive and not moved during the call.
                (n, false) => unsafe { std::slice::from_raw_parts(params.rgvarg, n as usize) },
            };
            match self.invoke(id, &Args { vars }) {
                Ok(value) => {
                    if !result.is_null() {
                        // SAFETY: non-NULL: the caller's VARIANT for the result, which OLE
                        // Automation says is empty on entry; written without dropping it.
                        unsafe { result.write(value) };
                    }
                    S_OK
                }
                Err(Failure::Dispatch { hr, arg }) => {
                    if let (Some(arg), false) = (arg, arg_error.is_null()) {
                        // SAFETY: non-NULL: the caller's UINT for the wrong argument's index.
                        unsafe { arg_error.write(arg) };
                    }
                    hr
                }
                Err(Failure::Call { hr, context }) => {
                    let description = set_error_info(&<T as Automation>::IID, hr, context.as_deref());
                    if !exception.is_null() {
                        let filled = EXCEPINFO {
                            bstrSource: ManuallyDrop::new(BSTR::from(SOURCE)),
                            bstrDescription: ManuallyDrop::new(BSTR::from(description)),
                            scode: hr.0,
                            ..Default::default()
                        };
                        // SAFETY: non-NULL: the caller's EXCEPINFO, which it owns and frees
                        // (the BSTRs move to it); written without reading what was there.
                        unsafe { exception.write(filled) };
                    }
                    DISP_E_EXCEPTION
                }
            }
        })
    }
}

impl<T> IErrorSupport_Impl for T
where
    T: windows::core::IUnknownImpl + Automation,
{
    unsafe fn InterfaceSupportsErrorInfo(&self, iid: *const GUID) -> HRESULT {
        guard(|| {
            if iid.is_null() {
                return E_POINTER;
            }
            // SAFETY: non-NULL: a GUID reference from the caller.
            if unsafe { *iid } == <T as Automation>::IID {
                S_OK
            } else {
                S_FALSE
            }
        })
    }
}

/// The arguments of an `Invoke`, by position as the IDL lists them (0 = first); `rgvarg` holds
/// them in reverse order.
pub(crate) struct Args<'a> {
    vars: &'a [VARIANT],
}

impl Args<'_> {
    pub(crate) fn len(&self) -> usize {
        self.vars.len()
    }

    /// `DISP_E_BADPARAMCOUNT` unless there are `required..=total` arguments.
    pub(crate) fn count(&self, required: usize, total: usize) -> Result<()> {
        if (required..=total).contains(&self.vars.len()) {
            Ok(())
        } else {
            Err(Failure::Dispatch { hr: DISP_E_BADPARAMCOUNT, arg: None })
        }
    }

    /// The index in `rgvarg` of argument `pos`, as `puArgErr` reports it.
    /// (0 for an argument past the end: a missing one is reported at the last.)
    fn index(&self, pos: usize) -> u32 {
        self.vars.len().saturating_sub(pos + 1) as u32
    }

    /// Argument `pos`, seen through one `VT_BYREF|VT_VARIANT` (a VBScript variable passed by
    /// reference); `None` when it is missing (past the end, or VT_ERROR/DISP_E_PARAMNOTFOUND,
    /// how a caller leaves out an optional argument in the middle).
    fn get(&self, pos: usize) -> Option<&VARIANT> {
        let var = self.vars.get(self.vars.len().checked_sub(pos + 1)?)?;
        let var = if vt(var) == VARENUM(VT_BYREF.0 | VT_VARIANT.0) {
            // SAFETY: a VT_BYREF|VT_VARIANT holds a pointer to a VARIANT that the caller keeps
            // alive for the call; NULL is treated as missing.
            unsafe { var.Anonymous.Anonymous.Anonymous.pvarVal.as_ref()? }
        } else {
            var
        };
        // SAFETY: scode is the active field of a VT_ERROR.
        let missing = vt(var) == VT_ERROR
            && unsafe { var.Anonymous.Anonymous.Anonymous.scode } == DISP_E_PARAMNOTFOUND.0;
        (!missing).then_some(var)
    }

    /// Argument `pos` converted to `to` by `VariantChangeType` (so "5", 5.0 and 5 all give 5):
    /// `DISP_E_PARAMNOTFOUND` when missing, `DISP_E_TYPEMISMATCH` when it does not convert.
    fn convert(&self, pos: usize, to: VARENUM) -> Result<Option<VARIANT>> {
        let Some(var) = self.get(pos) else { return Ok(None) };
        let mut converted = VARIANT::default();
        // SAFETY: `var` is a live VARIANT of the caller's; the result is a fresh VARIANT that
        // owns what VariantChangeType puts in it (dropped with VariantClear).
        match unsafe { VariantChangeType(&mut converted, var, VAR_CHANGE_FLAGS(0), to) } {
            Ok(()) => Ok(Some(converted)),
            Err(_) => Err(Failure::Dispatch { hr: DISP_E_TYPEMISMATCH, arg: Some(self.index(pos)) }),
        }
    }

    fn required(&self, pos: usize, to: VARENUM) -> Result<VARIANT> {
        self.convert(pos, to)?
            .ok_or(Failure::Dispatch { hr: DISP_E_PARAMNOTFOUND, arg: Some(self.index(pos)) })
    }

    /// A `LONG` (or enumeration) argument.
    pub(crate) fn i32(&self, pos: usize) -> Result<i32> {
        let var = self.required(pos, VT_I4)?;
        // SAFETY: lVal is the active field of a VT_I4.
        Ok(unsafe { var.Anonymous.Anonymous.Anonymous.lVal })
    }

    /// An optional `LONG` (or enumeration) argument: `default` when left out.
    pub(crate) fn i32_or(&self, pos: usize, default: i32) -> Result<i32> {
        // SAFETY: lVal is the active field of a VT_I4.
        Ok(self.convert(pos, VT_I4)?.map_or(default, |var| unsafe { var.Anonymous.Anonymous.Anonymous.lVal }))
    }

    /// A 64-bit integer argument (a handle: `ULONG_PTR`).
    pub(crate) fn i64(&self, pos: usize) -> Result<i64> {
        let var = self.required(pos, VT_I8)?;
        // SAFETY: llVal is the active field of a VT_I8.
        Ok(unsafe { var.Anonymous.Anonymous.Anonymous.llVal })
    }

    /// A `BSTR` argument (a copy; NULL and "" are both the empty string).
    pub(crate) fn bstr(&self, pos: usize) -> Result<BSTR> {
        self.required(pos, VT_BSTR).map(take_bstr)
    }

    /// An optional `BSTR` argument.
    pub(crate) fn bstr_opt(&self, pos: usize) -> Result<Option<BSTR>> {
        Ok(self.convert(pos, VT_BSTR)?.map(take_bstr))
    }

    /// Bytes for a script: a byte array (VT_ARRAY|VT_UI1), a string whose characters are the
    /// bytes (each U+0000..U+00FF, else `E_INVALIDARG`), or a number 0..255 for one byte.
    pub(crate) fn bytes(&self, pos: usize) -> Result<Vec<u8>> {
        let mismatch = || Failure::Dispatch { hr: DISP_E_TYPEMISMATCH, arg: Some(self.index(pos)) };
        let Some(var) = self.get(pos) else { return self.required(pos, VT_BSTR).map(|_| Vec::new()) };
        let kind = vt(var);
        if kind == VARENUM(VT_ARRAY.0 | VT_UI1.0) || kind == VARENUM(VT_BYREF.0 | VT_ARRAY.0 | VT_UI1.0) {
            // SAFETY: parray (or *pparray for VT_BYREF) is the active field of a byte array
            // variant; the SAFEARRAY is the caller's, alive for the call, read under SafeArrayAccessData.
            unsafe {
                let field = &var.Anonymous.Anonymous.Anonymous;
                let array = if kind.0 & VT_BYREF.0 == 0 {
                    field.parray
                } else if field.pparray.is_null() {
                    // A reference to no variable at all: not an array to read.
                    return Err(mismatch());
                } else {
                    *field.pparray
                };
                if array.is_null() {
                    return Ok(Vec::new());
                }
                if SafeArrayGetDim(array) != 1 {
                    return Err(mismatch());
                }
                let count = (*array).rgsabound[0].cElements as usize;
                let mut data = std::ptr::null_mut();
                SafeArrayAccessData(array, &mut data).map_err(|_| mismatch())?;
                let bytes = std::slice::from_raw_parts(data.cast::<u8>(), count).to_vec();
                let _ = SafeArrayUnaccessData(array);
                return Ok(bytes);
            }
        }
        if kind == VT_BSTR || kind == VARENUM(VT_BYREF.0 | VT_BSTR.0) {
            // The bytes may be a code (a PIN as "1234"): the converted string, a copy of ours,
            // is wiped before it is freed, and the bytes go into one allocation (no
            // reallocation leaves a partial copy behind).
            let text = self.required(pos, VT_BSTR).map(take_bstr)?;
            let mut bytes = Vec::with_capacity(text.len());
            let fits = text.iter().all(|&c| u8::try_from(c).map(|byte| bytes.push(byte)).is_ok());
            // SAFETY: `text` is this function's own BSTR (made by the conversion above), its
            // characters writable and referenced by nothing else.
            wipe(unsafe { std::slice::from_raw_parts_mut(text.as_ptr().cast_mut(), text.len()) });
            if !fits {
                wipe(&mut bytes);
                return Err(E_INVALIDARG.into());
            }
            return Ok(bytes);
        }
        let byte = self.i32(pos)?;
        Ok(vec![u8::try_from(byte).map_err(|_| Failure::from(E_INVALIDARG))?])
    }

    /// An object argument as interface `I` (QueryInterface): `DISP_E_TYPEMISMATCH` when it is
    /// not an object or lacks `I`, `E_POINTER` (a call failure) for `Nothing` or no argument.
    #[allow(dead_code)] // for com-objects' methods that take an IByteBuffer
    pub(crate) fn object<I: Interface>(&self, pos: usize) -> Result<I> {
        self.object_opt(pos)?.ok_or(E_POINTER.into())
    }

    /// An object argument that may be left unset: missing, `Nothing`, Empty or Null are `None`.
    pub(crate) fn object_opt<I: Interface>(&self, pos: usize) -> Result<Option<I>> {
        match self.get(pos).map(vt) {
            None | Some(VT_EMPTY) | Some(VT_NULL) => return Ok(None),
            Some(_) => {}
        }
        let Some(var) = self.convert(pos, VT_UNKNOWN)? else { return Ok(None) };
        // SAFETY: punkVal is the active field of a VT_UNKNOWN; borrowed, `var` keeps it alive.
        let unknown: &Option<IUnknown> = unsafe { &var.Anonymous.Anonymous.Anonymous.punkVal };
        let Some(unknown) = unknown.as_ref() else { return Ok(None) };
        unknown
            .cast::<I>()
            .map(Some)
            .map_err(|_| Failure::Dispatch { hr: DISP_E_TYPEMISMATCH, arg: Some(self.index(pos)) })
    }

    /// An `[out]` argument: a variable passed by reference, `VT_BYREF|VT_VARIANT` (VBScript, VB6
    /// with a Variant) or typed: `VT_BYREF|VT_I4`, `|VT_BSTR`, `|VT_DISPATCH`, `|VT_UNKNOWN` (C++,
    /// VB6 with a Long, String, Object). Checked before the call, written after it with the
    /// `Out::set_*` methods.
    pub(crate) fn out(&self, pos: usize) -> Result<Out<'_>> {
        let var = (self.vars.len().checked_sub(pos + 1))
            .and_then(|index| self.vars.get(index))
            .ok_or(Failure::Dispatch { hr: DISP_E_PARAMNOTFOUND, arg: None })?;
        let kind = vt(var);
        let by_ref = VARENUM(kind.0 & !VT_BYREF.0);
        // SAFETY: `byref` is the active field of any VT_BYREF variant.
        let target = unsafe { var.Anonymous.Anonymous.Anonymous.byref };
        let accepted = [VT_VARIANT, VT_I4, VT_BSTR, VT_DISPATCH, VT_UNKNOWN].contains(&by_ref);
        if kind.0 & VT_BYREF.0 == 0 || target.is_null() || !accepted {
            return Err(Failure::Dispatch { hr: DISP_E_TYPEMISMATCH, arg: Some(self.index(pos)) });
        }
        Ok(Out { target, kind: by_ref, _args: std::marker::PhantomData })
    }
}

fn vt(var: &VARIANT) -> VARENUM {
    // SAFETY: `vt` is valid in every VARIANT.
    unsafe { var.Anonymous.Anonymous.vt }
}

/// The string of a VT_BSTR variant of ours, moved out of it (no copy: a copy can fail to be
/// allocated, and would be one more copy of a code).
fn take_bstr(mut var: VARIANT) -> BSTR {
    // SAFETY: bstrVal is the active field of a VT_BSTR; it moves to the BSTR returned, and
    // `var` is left VT_EMPTY so that it frees nothing.
    unsafe {
        let inner = &mut *var.Anonymous.Anonymous;
        let text = ManuallyDrop::take(&mut inner.Anonymous.bstrVal);
        inner.vt = VT_EMPTY;
        text
    }
}

/// Overwrites `data` with zeros in a way the compiler keeps (a copy of a code about to be freed).
pub(crate) fn wipe<T: Copy + Default>(data: &mut [T]) {
    for item in data.iter_mut() {
        // SAFETY: `item` is a valid, exclusive reference; a volatile write is not removed as a
        // store nobody reads.
        unsafe { std::ptr::write_volatile(item, T::default()) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// A checked `[out]` argument of an `Invoke` (see [`Args::out`]).
pub(crate) struct Out<'a> {
    target: *mut c_void,
    /// What the target holds: VT_VARIANT, VT_I4, VT_BSTR, VT_DISPATCH or VT_UNKNOWN.
    kind: VARENUM,
    _args: std::marker::PhantomData<&'a ()>,
}

impl Out<'_> {
    pub(crate) fn set_i32(self, value: i32) {
        self.set(VARIANT::from(value));
    }

    /// A string into the caller's variable.
    pub(crate) fn set_bstr(self, value: BSTR) {
        let mut var = VARIANT::default();
        // SAFETY: a fresh VT_EMPTY VARIANT made a VT_BSTR owning `value` (freed with it).
        unsafe {
            (*var.Anonymous.Anonymous).vt = VT_BSTR;
            (*var.Anonymous.Anonymous).Anonymous.bstrVal = ManuallyDrop::new(value);
        }
        self.set(var);
    }

    /// An object into the caller's variable, as `VT_DISPATCH` (VBScript's `Set` wants it) when
    /// it has IDispatch (every object of this server does).
    pub(crate) fn set_object(self, value: &IUnknown) {
        match value.cast::<IDispatch>() {
            Ok(dispatch) => self.set(VARIANT::from(dispatch)),
            Err(_) => self.set(VARIANT::from(value.clone())),
        }
    }

    /// Stores `value` in the target, converted to the target's type (a typed variable that
    /// cannot hold it is left as it was: the type was checked before the call).
    fn set(self, value: VARIANT) {
        if self.kind == VT_VARIANT {
            // SAFETY: a VT_BYREF|VT_VARIANT target: a live VARIANT of the caller's. Assigning
            // drops (VariantClear) the old value first, as writing a Variant variable must.
            unsafe { *self.target.cast::<VARIANT>() = value };
            return;
        }
        let mut typed = VARIANT::default();
        // SAFETY: both VARIANTs are live; `typed` owns what the conversion puts in it.
        if unsafe { VariantChangeType(&mut typed, &value, VAR_CHANGE_FLAGS(0), self.kind) }.is_err() {
            return;
        }
        // SAFETY: `typed` holds a value of the target's type (checked in Args::out); its field
        // is moved into the caller's typed variable, whose old value is dropped (freed or
        // released) by the assignment, and `typed` is left VT_EMPTY so nothing is freed twice.
        unsafe {
            let field = &mut (*typed.Anonymous.Anonymous).Anonymous;
            match self.kind {
                VT_I4 => self.target.cast::<i32>().write(field.lVal),
                VT_BSTR => *self.target.cast::<BSTR>() = ManuallyDrop::take(&mut field.bstrVal),
                VT_DISPATCH => {
                    *self.target.cast::<Option<IDispatch>>() = ManuallyDrop::take(&mut field.pdispVal)
                }
                _ => *self.target.cast::<Option<IUnknown>>() = ManuallyDrop::take(&mut field.punkVal),
            }
            (*typed.Anonymous.Anonymous).vt = VT_EMPTY;
        }
    }
}

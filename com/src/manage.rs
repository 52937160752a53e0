//! `ISCardManage` (IID 5E586211-5A09-11D0-B84C-00C04FD424B9): the class `SCardManage`, one
//! `scm_manage` of the library per object. Each method calls the C ABI function of the same
//! name (ABI.md) and returns its HRESULT; the same code serves the vtable and `Invoke`.

#![allow(non_snake_case)] // the COM method names, as the vtable spells them

use std::ffi::{c_void, CString};
use windows::core::{implement, interface, IUnknown, Interface, BSTR, GUID, HRESULT, PCWSTR};
use windows::Win32::Foundation::{E_INVALIDARG, E_POINTER};
use windows::Win32::System::Com::IIDFromString;
use windows::Win32::System::Variant::VARIANT;

use crate::dispatch::{
    call, object_variant, scm, wide, write, write_interface, Args, Automation, Failure, IAutomation,
    IAutomation_Impl, IAutomation_Vtbl, IErrorSupport, Result,
};
use crate::factories;
use crate::server::Live;
use scardmanage::{scm_manage, SCM_E_NOTIMPL, SCM_PROTOCOL_ANY, SCM_SHARE_SHARED};

/// The IIDs of the objects ISCardManage creates (documented by Microsoft; objects.idl).
pub(crate) const IID_ISCARD_FILE_ACCESS: GUID = GUID::from_u128(0x4029DD8A_5902_11D0_B84C_00C04FD424B9);
pub(crate) const IID_ISCARD_VERIFY: GUID = GUID::from_u128(0x4029DD85_5902_11D0_B84C_00C04FD424B9);
pub(crate) const IID_ISCARD_AUTH: GUID = GUID::from_u128(0x7B063D61_6E40_11D0_B858_00C04FD424B9);

/// The SCardManage class (this project's own CLSID; the ProgIDs of Microsoft's SCardCOM sample).
pub(crate) const CLSID_SCARD_MANAGE: GUID = GUID::from_u128(0x2F199F8A_E67B_4DEA_8E66_F45B0289F038);

#[interface("5E586211-5A09-11D0-B84C-00C04FD424B9")]
pub(crate) unsafe trait ISCardManage: IAutomation {
    fn AttachByHandle(&self, hicc: usize) -> HRESULT;
    /// `reader` is a BSTR: UTF-16, NUL-terminated.
    fn AttachByIFD(&self, reader: *const u16, share_mode: i32) -> HRESULT;
    fn CreateFileAccess(&self, out: *mut *mut c_void) -> HRESULT;
    fn CreateCardAuth(&self, out: *mut *mut c_void) -> HRESULT;
    fn CreateCHVerification(&self, out: *mut *mut c_void) -> HRESULT;
    fn Detach(&self) -> HRESULT;
    fn SCardLock(&self) -> HRESULT;
    fn Reconnect(&self) -> HRESULT;
    fn Status(&self, state: *mut i32, protocol: *mut i32) -> HRESULT;
    fn SCardUnlock(&self, disposition: i32) -> HRESULT;
    fn CreateInterface(
        &self,
        iid: *const GUID,
        name: *const u16,
        user_data: *const i32,
        out: *mut *mut c_void,
    ) -> HRESULT;
}

/// One manager of the library (`scm_create` at creation, `scm_release` at the last Release).
#[implement(ISCardManage, IErrorSupport)]
pub(crate) struct Manage {
    /// The library's token (`scm_manage *`), a number it checks on every call.
    token: usize,
    _live: Live,
}

/// Which object a Create* method makes.
#[derive(Clone, Copy)]
enum Kind {
    FileAccess,
    Verify,
    Auth,
}

impl Kind {
    fn iid(self) -> GUID {
        match self {
            Kind::FileAccess => IID_ISCARD_FILE_ACCESS,
            Kind::Verify => IID_ISCARD_VERIFY,
            Kind::Auth => IID_ISCARD_AUTH,
        }
    }

    /// `scm_create_interface`'s choice: by IID when there is one, else by name; anything else
    /// (the standard "CryptoProvider" too) is `SCM_E_NOTIMPL`, as the C function answers.
    fn choose(iid: Option<GUID>, name: Option<&[u16]>) -> Result<Kind> {
        let kind = match (iid, name) {
            (Some(iid), _) if iid == IID_ISCARD_FILE_ACCESS => Kind::FileAccess,
            (Some(iid), _) if iid == IID_ISCARD_VERIFY => Kind::Verify,
            (Some(iid), _) if iid == IID_ISCARD_AUTH => Kind::Auth,
            (Some(_), _) => return Err(HRESULT(SCM_E_NOTIMPL).into()),
            (None, None) => return Err(E_POINTER.into()),
            (None, Some([])) => return Err(E_INVALIDARG.into()),
            (None, Some(name)) => match String::from_utf16(name).as_deref() {
                Ok("FileAccess") => Kind::FileAccess,
                Ok("CHVerification") => Kind::Verify,
                Ok("CardAuth") => Kind::Auth,
                Ok(_) => return Err(HRESULT(SCM_E_NOTIMPL).into()),
                Err(_) => return Err(E_INVALIDARG.into()),
            },
        };
        Ok(kind)
    }
}

impl Manage {
    /// A new, unattached SCardManage object.
    pub(crate) fn new_object() -> Result<ISCardManage> {
        let mut token = std::ptr::null_mut();
        // SAFETY: `token` is a writable pointer for the library to fill.
        scm(unsafe { scardmanage::scm_create(&mut token) })?;
        Ok(Manage { token: token as usize, _live: Live::new() }.into())
    }

    /// The library's token of this manager, for the objects created from it (`scm_create_*`).
    pub(crate) fn token(&self) -> *mut scm_manage {
        self.token as *mut scm_manage
    }

    fn attach_by_handle(&self, hicc: usize) -> Result<()> {
        // SAFETY: the library checks the token; the handle is a number it validates.
        scm(unsafe { scardmanage::scm_attach_by_handle(self.token(), hicc) })
    }

    /// The reader's name as UTF-16 (a BSTR's characters, no NUL) and the share mode.
    fn attach_by_ifd(&self, reader: &[u16], share_mode: i32) -> Result<()> {
        // The library's checks, for a name it cannot see as UTF-16 here: an embedded NUL or an
        // unpaired surrogate is an invalid name, as scm_attach_by_ifd_w says.
        let name = String::from_utf16(reader).map_err(|_| Failure::from(E_INVALIDARG))?;
        let name = CString::new(name).map_err(|_| Failure::from(E_INVALIDARG))?;
        let share_mode = u32::try_from(share_mode).map_err(|_| Failure::from(E_INVALIDARG))?;
        // SAFETY: `name` is NUL-terminated and outlives the call; the token is checked.
        scm(unsafe {
            scardmanage::scm_attach_by_ifd_ex(self.token(), name.as_ptr(), share_mode, SCM_PROTOCOL_ANY)
        })
        .map_err(|failure| failure.context(format!("reader \"{}\"", name.to_string_lossy())))
    }

    fn detach(&self) -> Result<()> {
        // SAFETY: the library checks the token.
        scm(unsafe { scardmanage::scm_detach(self.token()) })
    }

    fn lock(&self) -> Result<()> {
        // SAFETY: the library checks the token.
        scm(unsafe { scardmanage::scm_lock(self.token()) })
    }

    fn unlock(&self, disposition: i32) -> Result<()> {
        // A negative disposition is no disposition: as u32 it is out of range and refused.
        // SAFETY: the library checks the token and the disposition.
        scm(unsafe { scardmanage::scm_unlock(self.token(), disposition as u32) })
    }

    fn reconnect(&self) -> Result<()> {
        // SAFETY: the library checks the token.
        scm(unsafe { scardmanage::scm_reconnect(self.token()) })
    }

    fn status(&self) -> Result<(u32, u32)> {
        let (mut state, mut protocol) = (0, 0);
        // SAFETY: two writable u32s; the library checks the token.
        scm(unsafe { scardmanage::scm_status(self.token(), &mut state, &mut protocol) })?;
        Ok((state, protocol))
    }

    fn create(&self, this: &ISCardManage, kind: Kind) -> Result<IUnknown> {
        match kind {
            Kind::FileAccess => factories::create_file_access(self.token(), this),
            Kind::Verify => factories::create_chv_verification(self.token(), this),
            Kind::Auth => factories::create_card_auth(self.token(), this),
        }
    }
}

impl Drop for Manage {
    fn drop(&mut self) {
        // SAFETY: the token is this object's own, released once, here. Its result (unlocked,
        // detached) has nobody to go to: Release returns a count.
        unsafe { scardmanage::scm_release(self.token()) };
    }
}

impl Manage_Impl {
    fn this(&self) -> ISCardManage {
        use windows::core::IUnknownImpl;
        self.to_object().to_interface()
    }

    fn create_into(&self, kind: Kind, out: *mut *mut c_void) -> Result<()> {
        if !out.is_null() {
            // SAFETY: non-NULL: an [out] pointer is NULL until the call succeeds.
            unsafe { out.write(std::ptr::null_mut()) };
        }
        let object = self.create(&self.this(), kind)?;
        write_interface(out, &object, &kind.iid())
    }
}

impl ISCardManage_Impl for Manage_Impl {
    unsafe fn AttachByHandle(&self, hicc: usize) -> HRESULT {
        call::<Manage_Impl>(|| self.attach_by_handle(hicc))
    }

    unsafe fn AttachByIFD(&self, reader: *const u16, share_mode: i32) -> HRESULT {
        call::<Manage_Impl>(|| self.attach_by_ifd(wide(reader), share_mode))
    }

    unsafe fn CreateFileAccess(&self, out: *mut *mut c_void) -> HRESULT {
        call::<Manage_Impl>(|| self.create_into(Kind::FileAccess, out))
    }

    unsafe fn CreateCardAuth(&self, out: *mut *mut c_void) -> HRESULT {
        call::<Manage_Impl>(|| self.create_into(Kind::Auth, out))
    }

    unsafe fn CreateCHVerification(&self, out: *mut *mut c_void) -> HRESULT {
        call::<Manage_Impl>(|| self.create_into(Kind::Verify, out))
    }

    unsafe fn Detach(&self) -> HRESULT {
        call::<Manage_Impl>(|| self.detach())
    }

    unsafe fn SCardLock(&self) -> HRESULT {
        call::<Manage_Impl>(|| self.lock())
    }

    unsafe fn Reconnect(&self) -> HRESULT {
        call::<Manage_Impl>(|| self.reconnect())
    }

    unsafe fn Status(&self, state: *mut i32, protocol: *mut i32) -> HRESULT {
        call::<Manage_Impl>(|| {
            if state.is_null() || protocol.is_null() {
                return Err(E_POINTER.into());
            }
            let (s, p) = self.status()?;
            write(state, s as i32)?;
            write(protocol, p as i32)
        })
    }

    unsafe fn SCardUnlock(&self, disposition: i32) -> HRESULT {
        call::<Manage_Impl>(|| self.unlock(disposition))
    }

    unsafe fn CreateInterface(
        &self,
        iid: *const GUID,
        name: *const u16,
        _user_data: *const i32,
        out: *mut *mut c_void,
    ) -> HRESULT {
        call::<Manage_Impl>(|| {
            // SAFETY: a non-NULL `iid` is a GUID the caller passes for the call.
            let iid = unsafe { iid.as_ref() }.copied();
            let name = (!name.is_null()).then(|| wide(name));
            self.create_into(Kind::choose(iid, name)?, out)
        })
    }
}

impl Automation for Manage_Impl {
    const IID: GUID = ISCardManage::IID;

    fn invoke(&self, id: i32, args: &Args<'_>) -> Result<VARIANT> {
        let none = VARIANT::default();
        match id {
            1 => {
                args.count(1, 1)?;
                let handle = args.i64(0)?;
                let handle = usize::try_from(handle).map_err(|_| Failure::from(E_INVALIDARG))?;
                self.attach_by_handle(handle).map(|()| none)
            }
            2 => {
                args.count(1, 2)?;
                let reader = args.bstr(0)?;
                let share_mode = args.i32_or(1, SCM_SHARE_SHARED as i32)?;
                self.attach_by_ifd(&reader, share_mode).map(|()| none)
            }
            // The methods without parameters take no arguments either.
            3..=8 if args.len() > 0 => args.count(0, 0).map(|()| none),
            3 => object_variant(&self.create(&self.this(), Kind::FileAccess)?),
            4 => object_variant(&self.create(&self.this(), Kind::Auth)?),
            5 => object_variant(&self.create(&self.this(), Kind::Verify)?),
            6 => self.detach().map(|()| none),
            7 => self.lock().map(|()| none),
            8 => self.reconnect().map(|()| none),
            9 => {
                args.count(2, 2)?;
                let (state_out, protocol_out) = (args.out(0)?, args.out(1)?);
                let (state, protocol) = self.status()?;
                state_out.set_i32(state as i32);
                protocol_out.set_i32(protocol as i32);
                Ok(none)
            }
            10 => {
                args.count(0, 1)?;
                self.unlock(args.i32_or(0, scardmanage::SCM_LEAVE_CARD as i32)?).map(|()| none)
            }
            11 => {
                // From a script the IID is a string ("{4029DD8A-...}"); empty or left out: by name.
                args.count(1, 3)?;
                let iid = match args.bstr_opt(0)? {
                    Some(text) if !text.is_empty() => {
                        let text: Vec<u16> = text.iter().copied().chain([0]).collect();
                        // SAFETY: `text` is NUL-terminated and outlives the call.
                        Some(
                            unsafe { IIDFromString(PCWSTR(text.as_ptr())) }
                                .map_err(|_| Failure::from(E_INVALIDARG))?,
                        )
                    }
                    _ => None,
                };
                let name: Option<BSTR> = args.bstr_opt(1)?;
                let kind = Kind::choose(iid, name.as_deref())?;
                object_variant(&self.create(&self.this(), kind)?)
            }
            _ => Err(Failure::unknown_member()),
        }
    }
}

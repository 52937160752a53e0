//! The DLL's five entry points, the only symbols it exports (`.ci/build-com` checks that).

use std::ffi::c_void;
use windows::core::{Interface, BOOL, GUID, HRESULT, PCWSTR};
use windows::Win32::Foundation::{CLASS_E_CLASSNOTAVAILABLE, E_INVALIDARG, E_POINTER, S_FALSE, S_OK};
use windows::Win32::System::Registry::{HKEY, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE};

use crate::byte_buffer::{ByteBuffer, CLSID_CBYTE_BUFFER};
use crate::factory::{Factory, Make};
use crate::manage::{Manage, CLSID_SCARD_MANAGE};
use crate::registry;
use crate::server::{guard, in_use};

fn make_manage() -> crate::dispatch::Result<windows::core::IUnknown> {
    Ok(Manage::new_object()?.into())
}

/// # Safety
/// COM's contract: `clsid` and `iid` point to GUIDs, `out` to a writable pointer (each checked
/// for NULL).
#[no_mangle]
unsafe extern "system" fn DllGetClassObject(
    clsid: *const GUID,
    iid: *const GUID,
    out: *mut *mut c_void,
) -> HRESULT {
    guard(|| {
        if clsid.is_null() || iid.is_null() || out.is_null() {
            return E_POINTER;
        }
        // SAFETY: non-NULL: the caller's [out] pointer, NULL until a factory is given.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: non-NULL: the caller's CLSID.
        let make: Make = match unsafe { *clsid } {
            CLSID_SCARD_MANAGE => make_manage,
            CLSID_CBYTE_BUFFER => ByteBuffer::new_object,
            _ => return CLASS_E_CLASSNOTAVAILABLE,
        };
        // SAFETY: `iid` and `out` checked above; `query` AddRefs what it writes.
        unsafe { Factory::new_object(make).query(iid, out) }
    })
}

#[no_mangle]
extern "system" fn DllCanUnloadNow() -> HRESULT {
    if in_use() {
        S_FALSE
    } else {
        S_OK
    }
}

#[no_mangle]
extern "system" fn DllRegisterServer() -> HRESULT {
    guard(|| install(HKEY_LOCAL_MACHINE))
}

#[no_mangle]
extern "system" fn DllUnregisterServer() -> HRESULT {
    guard(|| registry::unregister(HKEY_LOCAL_MACHINE).map_or_else(|e| e.code(), |()| S_OK))
}

/// Registration under `root`; on failure, what was written is removed again.
fn install(root: HKEY) -> HRESULT {
    match registry::register(root) {
        Ok(()) => S_OK,
        Err(error) => {
            let _ = registry::unregister(root);
            error.code()
        }
    }
}

/// `regsvr32 /n /i:user` (install) and `regsvr32 /u /n /i:user` (uninstall): the same keys under
/// HKCU\Software\Classes, for a user who is not an administrator. Without a command line (or
/// with "machine"), HKLM as DllRegisterServer.
///
/// # Safety
/// `command` is NULL or a NUL-terminated UTF-16 string (COM's contract).
#[no_mangle]
unsafe extern "system" fn DllInstall(install_it: BOOL, command: PCWSTR) -> HRESULT {
    guard(|| {
        let command = if command.is_null() {
            String::new()
        } else {
            // SAFETY: non-NULL: a NUL-terminated UTF-16 string from regsvr32 or the caller.
            unsafe { String::from_utf16_lossy(command.as_wide()) }
        };
        let root = match command.trim().to_ascii_lowercase().as_str() {
            "user" => HKEY_CURRENT_USER,
            "" | "machine" => HKEY_LOCAL_MACHINE,
            _ => return E_INVALIDARG,
        };
        if install_it.as_bool() {
            install(root)
        } else {
            registry::unregister(root).map_or_else(|e| e.code(), |()| S_OK)
        }
    })
}

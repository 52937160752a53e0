//! Registration: the keys `DllRegisterServer` writes under HKLM\Software\Classes, and
//! `DllInstall(TRUE, L"user")` under HKCU\Software\Classes (for users who are not
//! administrators; HKCR merges the two). Unregistration removes every key written here.
//!
//! Written by hand, the type library's keys too, so both places get the same keys: the
//! classes (InprocServer32 = this DLL's path, ThreadingModel Both, ProgID, TypeLib), the
//! ProgIDs, the type library (TypeLib\{LIBID}\1.0, for #import, VB6/VBA references) and each of
//! its interfaces (Interface\{IID}, marshaled by the type library marshaler through it).
//!
//! On 64-bit Windows the 32-bit and the 64-bit server can both be registered: WOW64 keeps a
//! CLSID\ and an Interface\ key for each, but the ProgIDs and TypeLib\{LIBID} are one key for
//! both (shared). Unregistering one removes its own keys and its platform's type library path
//! (`0\win32` or `0\win64`); the shared keys go with the last of the two.

use windows::core::{BSTR, GUID, HSTRING, PCWSTR};
use windows::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_SUCCESS, WIN32_ERROR};
use windows::Win32::System::Com::{TKIND_DISPATCH, TKIND_INTERFACE};
use windows::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyW, RegDeleteTreeW, RegOpenKeyExW, RegQueryInfoKeyW, RegSetValueExW, HKEY,
    KEY_READ, REG_SZ,
};

use crate::byte_buffer::{BYTE_BUFFER_PROGID, CLSID_CBYTE_BUFFER};
use crate::dispatch::type_library;
use crate::manage::CLSID_SCARD_MANAGE;
use crate::server::module_path;

/// The type library's LIBID and version (scardmanage.idl).
const LIBID: GUID = GUID::from_u128(0x129A91FC_FD03_46EB_83AF_43E9E99AF72C);
const LIB_VERSION: &str = "1.0";
/// The type library marshaler (PSOAInterface): proxies of dual interfaces from their type info.
const PSOA_INTERFACE: &str = "{00020424-0000-0000-C000-000000000046}";
const MANAGE_PROGID: &str = "SCardCOM.SCardManage";

/// A class: CLSID, description, ProgID without its version.
const CLASSES: [(GUID, &str, &str); 2] = [
    (CLSID_SCARD_MANAGE, "SCardManage: ISCardManage over the scardmanage library", MANAGE_PROGID),
    (CLSID_CBYTE_BUFFER, "CByteBuffer: a byte buffer (IByteBuffer)", BYTE_BUFFER_PROGID),
];

fn braced(guid: &GUID) -> String {
    format!("{{{guid:?}}}")
}

/// Writes a key's values (None = the default value), creating the key.
fn set(root: HKEY, key: &str, values: &[(Option<&str>, &str)]) -> windows::core::Result<()> {
    let mut handle = HKEY::default();
    // SAFETY: the key name is a NUL-terminated HSTRING alive for the call; `handle` receives
    // an open key, closed below.
    unsafe { RegCreateKeyW(root, &HSTRING::from(key), &mut handle) }.ok()?;
    let mut result = Ok(());
    for (name, value) in values {
        let data: Vec<u8> = value.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
        let name = name.map(HSTRING::from);
        let name = name.as_ref().map_or(PCWSTR::null(), |n| PCWSTR(n.as_ptr()));
        // SAFETY: `handle` is open for writing; name and data outlive the call; REG_SZ data is
        // the UTF-16 string with its NUL, as the registry wants.
        let status = unsafe { RegSetValueExW(handle, name, None, REG_SZ, Some(&data)) };
        if status != ERROR_SUCCESS {
            result = status.ok();
            break;
        }
    }
    // SAFETY: closes the key opened above, once.
    let _ = unsafe { RegCloseKey(handle) };
    result
}

/// Deletes a key and everything under it; a key that is not there is fine.
fn delete(root: HKEY, key: &str) -> WIN32_ERROR {
    // SAFETY: the key name is a NUL-terminated HSTRING alive for the call.
    match unsafe { RegDeleteTreeW(root, &HSTRING::from(key)) } {
        ERROR_FILE_NOT_FOUND => ERROR_SUCCESS,
        status => status,
    }
}

/// Whether `key` exists under `root` and has subkeys.
fn has_subkeys(root: HKEY, key: &str) -> bool {
    let mut handle = HKEY::default();
    // SAFETY: the key name is a NUL-terminated HSTRING alive for the call; `handle` receives
    // an open key, closed below.
    if unsafe { RegOpenKeyExW(root, &HSTRING::from(key), None, KEY_READ, &mut handle) } != ERROR_SUCCESS {
        return false;
    }
    let mut count = 0u32;
    // SAFETY: `handle` is open for reading; only the count of subkeys is asked for.
    let status = unsafe {
        RegQueryInfoKeyW(handle, None, None, None, Some(&mut count), None, None, None, None, None, None, None)
    };
    // SAFETY: closes the key opened above, once.
    let _ = unsafe { RegCloseKey(handle) };
    status == ERROR_SUCCESS && count > 0
}

/// This build's platform in the type library's registration (`TypeLib\{LIBID}\1.0\0\<it>`).
fn platform() -> &'static str {
    if cfg!(target_pointer_width = "64") {
        "win64"
    } else {
        "win32"
    }
}

/// The interfaces of the embedded type library, as (IID, name).
fn interfaces() -> windows::core::Result<Vec<(GUID, String)>> {
    let library = type_library()?;
    let mut found = Vec::new();
    // SAFETY: plain calls on a live type library; each TYPEATTR is released after reading.
    unsafe {
        for index in 0..library.GetTypeInfoCount() {
            let info = library.GetTypeInfo(index)?;
            let attr = info.GetTypeAttr()?;
            let (guid, kind) = ((*attr).guid, (*attr).typekind);
            info.ReleaseTypeAttr(attr);
            if kind == TKIND_DISPATCH || kind == TKIND_INTERFACE {
                let mut name = BSTR::new();
                library.GetDocumentation(index as i32, Some(&mut name), None, std::ptr::null_mut(), None)?;
                found.push((guid, name.to_string()));
            }
        }
    }
    Ok(found)
}

/// Every key, under `root` (HKLM or HKCU) \Software\Classes.
pub(crate) fn register(root: HKEY) -> windows::core::Result<()> {
    let path = String::from_utf16_lossy(&module_path()?);
    let folder = path.rsplit_once('\\').map_or("", |(folder, _)| folder);
    let classes = "Software\\Classes";
    let libid = braced(&LIBID);
    for (clsid, description, progid) in CLASSES {
        let clsid = braced(&clsid);
        let versioned = format!("{progid}.1");
        let key = format!("{classes}\\CLSID\\{clsid}");
        set(root, &key, &[(None, description)])?;
        set(root, &format!("{key}\\InprocServer32"), &[(None, &path), (Some("ThreadingModel"), "Both")])?;
        set(root, &format!("{key}\\ProgID"), &[(None, &versioned)])?;
        set(root, &format!("{key}\\VersionIndependentProgID"), &[(None, progid)])?;
        set(root, &format!("{key}\\TypeLib"), &[(None, &libid)])?;
        set(root, &format!("{key}\\Version"), &[(None, LIB_VERSION)])?;
        for name in [progid, versioned.as_str()] {
            set(root, &format!("{classes}\\{name}"), &[(None, description)])?;
            set(root, &format!("{classes}\\{name}\\CLSID"), &[(None, &clsid)])?;
        }
        set(root, &format!("{classes}\\{progid}\\CurVer"), &[(None, &versioned)])?;
    }
    let lib = format!("{classes}\\TypeLib\\{libid}\\{LIB_VERSION}");
    set(root, &lib, &[(None, "SCardManageLib")])?;
    set(root, &format!("{lib}\\0\\{}", platform()), &[(None, &path)])?;
    set(root, &format!("{lib}\\FLAGS"), &[(None, "0")])?;
    set(root, &format!("{lib}\\HELPDIR"), &[(None, folder)])?;
    for (iid, name) in interfaces()? {
        let key = format!("{classes}\\Interface\\{}", braced(&iid));
        set(root, &key, &[(None, &name)])?;
        set(root, &format!("{key}\\ProxyStubClsid32"), &[(None, PSOA_INTERFACE)])?;
        set(root, &format!("{key}\\TypeLib"), &[(None, &libid), (Some("Version"), LIB_VERSION)])?;
    }
    Ok(())
}

/// Removes every key `register` writes under `root`, except the shared ones while the other
/// platform's server is still registered (see the module's comment); goes on past failures
/// and reports the first.
pub(crate) fn unregister(root: HKEY) -> windows::core::Result<()> {
    let classes = "Software\\Classes";
    let typelib = format!("{classes}\\TypeLib\\{}", braced(&LIBID));
    let platforms = format!("{typelib}\\{LIB_VERSION}\\0");
    let mut keys = vec![format!("{platforms}\\{}", platform())];
    for (clsid, _, _) in CLASSES {
        keys.push(format!("{classes}\\CLSID\\{}", braced(&clsid)));
    }
    // Without the type library's list of interfaces the rest is removed all the same.
    let listed = interfaces();
    for (iid, _) in listed.as_deref().unwrap_or_default() {
        keys.push(format!("{classes}\\Interface\\{}", braced(iid)));
    }
    // Every key is tried (collected first: `find` alone would stop at the first failure).
    let mut statuses: Vec<WIN32_ERROR> = keys.iter().map(|key| delete(root, key)).collect();
    if !has_subkeys(root, &platforms) {
        let mut shared = vec![typelib];
        for (_, _, progid) in CLASSES {
            shared.push(format!("{classes}\\{progid}"));
            shared.push(format!("{classes}\\{progid}.1"));
        }
        statuses.extend(shared.iter().map(|key| delete(root, key)));
    }
    let failed = statuses.into_iter().find(|status| *status != ERROR_SUCCESS);
    listed?;
    failed.map_or(Ok(()), |status| status.ok())
}

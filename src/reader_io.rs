//! Reader attributes and reader control (`scm_get_attrib`, `scm_set_attrib`, `scm_control`,
//! `scm_get_feature`), with each platform's conventions turned into the ABI's one.
//!
//! The translations are pure functions of the platform ([`Os`]), so that the unit tests on any
//! OS check every platform's table.

use std::ffi::CString;

use pcsc::ffi;

use crate::capi::{
    SCM_ATTR_ATR_STRING, SCM_ATTR_DEVICE_FRIENDLY_NAME, SCM_ATTR_DEVICE_SYSTEM_NAME,
    SCM_ATTR_VENDOR_IFD_SERIAL_NO, SCM_ATTR_VENDOR_IFD_TYPE, SCM_ATTR_VENDOR_NAME,
};
use crate::hresult::*;
use crate::manager::Manager;
use crate::scard::{self, CardHandle, Result};
use crate::spare_contexts;

/// The PC/SC flavours whose conventions differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// pcsc-lite (Linux, the BSDs).
    PcscLite,
    /// PCSC.framework, which keeps pcsc-lite's codes and control codes.
    Mac,
    /// WinSCard.
    Windows,
}

impl Os {
    /// The platform this library was built for.
    pub const HERE: Os = if cfg!(windows) {
        Os::Windows
    } else if cfg!(target_os = "macos") {
        Os::Mac
    } else {
        Os::PcscLite
    };
}

/// pcsc-lite's `CM_IOCTL_GET_FEATURE_REQUEST`: `SCARD_CTL_CODE(3400)` (PC/SC part 10).
pub const GET_FEATURE_REQUEST: u32 = 3400;

/// pcsc-lite's (and PCSC.framework's) value for both `SCARD_E_UNEXPECTED` and
/// `SCARD_E_UNSUPPORTED_FEATURE`.
const PCSCLITE_UNSUPPORTED: scm_hresult = 0x8010_001F_u32 as i32;

/// WinSCard's wide forms of the name attributes (the ABI's values are the narrow forms).
const WINDOWS_FRIENDLY_NAME_W: u32 = 0x7FFF_0005;
const WINDOWS_SYSTEM_NAME_W: u32 = 0x7FFF_0006;

/// The largest portable control code: up to it a code is the function number `n` of
/// `SCARD_CTL_CODE(n)`.
const PORTABLE_CONTROL_MAX: u32 = 0xFFFF;

/// The native control code of a portable one: a code up to 0xFFFF is the function number `n`
/// of `SCARD_CTL_CODE(n)`; a larger one is native already.
pub fn control_code(os: Os, code: u32) -> u32 {
    match os {
        _ if code > PORTABLE_CONTROL_MAX => code,
        Os::PcscLite | Os::Mac => 0x4200_0000 + code,
        Os::Windows => 0x0031_0000 | (code << 2),
    }
}

/// WinSCard passes a reader driver's own refusal through as a Win32 error: `ERROR_NOT_SUPPORTED`
/// (an unknown attribute or IOCTL, `STATUS_NOT_SUPPORTED` in the driver) or
/// `ERROR_INVALID_FUNCTION` (`STATUS_INVALID_DEVICE_REQUEST`), as `HRESULT_FROM_WIN32` here.
const WINDOWS_NOT_SUPPORTED: scm_hresult = 0x8007_0032_u32 as i32;
const WINDOWS_INVALID_FUNCTION: scm_hresult = 0x8007_0001_u32 as i32;

/// The code an attribute or control call reports: pcsc-lite's 0x8010001F in a call asking for a
/// feature means the feature is unsupported, which the ABI (as Windows) calls
/// `SCARD_E_UNSUPPORTED_FEATURE`; on Windows 0x8010001F is `SCARD_E_UNEXPECTED` and stays so,
/// and a driver's Win32 "not supported" is that code too, so that a program tests one code on
/// every OS.
pub fn feature_code(os: Os, code: scm_hresult) -> scm_hresult {
    match (os, code) {
        (Os::PcscLite | Os::Mac, PCSCLITE_UNSUPPORTED)
        | (Os::Windows, WINDOWS_NOT_SUPPORTED | WINDOWS_INVALID_FUNCTION) => SCM_SCARD_E_UNSUPPORTED_FEATURE,
        _ => code,
    }
}

/// The reader's name attributes, which the library answers as a resource manager does.
fn is_name(attribute: u32) -> bool {
    matches!(attribute, SCM_ATTR_DEVICE_FRIENDLY_NAME | SCM_ATTR_DEVICE_SYSTEM_NAME)
}

/// The attributes whose value is text: returned NUL-terminated in UTF-8.
pub fn is_text(attribute: u32) -> bool {
    is_name(attribute)
        || matches!(
            attribute,
            SCM_ATTR_VENDOR_NAME | SCM_ATTR_VENDOR_IFD_TYPE | SCM_ATTR_VENDOR_IFD_SERIAL_NO
        )
}

/// The attribute to ask the platform for: on Windows the wide form of a name, so that no name
/// goes through an ANSI code page.
pub fn native_attribute(os: Os, attribute: u32) -> u32 {
    match (os, attribute) {
        (Os::Windows, SCM_ATTR_DEVICE_FRIENDLY_NAME) => WINDOWS_FRIENDLY_NAME_W,
        (Os::Windows, SCM_ATTR_DEVICE_SYSTEM_NAME) => WINDOWS_SYSTEM_NAME_W,
        _ => attribute,
    }
}

/// A text attribute's value as the ABI gives it: UTF-8 whatever the driver wrote (a Windows
/// name arrives as UTF-16LE, an unpaired surrogate becoming U+FFFD; a vendor string in another
/// encoding has its invalid bytes replaced by U+FFFD), ending at its first NUL, with exactly one
/// terminating NUL whether or not the driver wrote one: a C reader stops at the first NUL, so
/// what a driver leaves after it would be counted in the length yet never read.
pub fn text_value(os: Os, attribute: u32, raw: &[u8]) -> Vec<u8> {
    let text = match (os, is_name(attribute)) {
        (Os::Windows, true) => {
            let units: Vec<u16> =
                raw.chunks_exact(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(raw).into_owned(),
    };
    let mut text = text.split('\0').next().unwrap_or_default().as_bytes().to_vec();
    text.push(0);
    text
}

/// The control code of feature `tag` in a PC/SC part 10 feature list (`tag`, length 4, the code
/// big-endian, repeated), `None` when the reader does not list it. The list comes from the
/// reader's driver and is checked whole: any entry whose length is not 4, or a truncated one,
/// makes it `SCM_SCARD_E_READER_UNSUPPORTED`; so does a code for `tag` up to 0xFFFF, which no
/// platform's `SCARD_CTL_CODE` gives and which `scm_control` would take for a portable function
/// number, sending another command than the one listed.
pub fn find_feature(list: &[u8], tag: u8) -> Result<Option<u32>> {
    let mut found = None;
    let mut rest = list;
    while !rest.is_empty() {
        match rest {
            [entry_tag, 4, a, b, c, d, tail @ ..] => {
                if *entry_tag == tag && found.is_none() {
                    found = Some(u32::from_be_bytes([*a, *b, *c, *d]));
                }
                rest = tail;
            }
            _ => return Err(SCM_SCARD_E_READER_UNSUPPORTED),
        }
    }
    match found {
        Some(code) if code > PORTABLE_CONTROL_MAX => Ok(Some(code)),
        Some(_) => Err(SCM_SCARD_E_READER_UNSUPPORTED),
        None => Ok(None),
    }
}

/// Room for any attribute: pcsc-lite refuses a buffer larger than `MAX_BUFFER_SIZE` before
/// asking the reader.
const ATTRIBUTE_ROOM: usize = if cfg!(windows) { 4096 } else { ffi::MAX_BUFFER_SIZE };

/// Runs `f` on the manager's card connection, or, when no card is connected, on a direct
/// connection to its reader made for the call (through a spare context, left as it was).
fn on_reader<R>(manager: &mut Manager, f: impl Fn(CardHandle) -> Result<R>) -> Result<R> {
    match manager.card_handle() {
        Err(SCM_SCARD_E_NO_SMARTCARD) => {}
        handle => return f(handle?),
    }
    let reader = CString::new(manager.reader_name()?).map_err(|_| SCM_E_UNEXPECTED)?;
    spare_contexts::with_spare(|context| {
        let (handle, _) = context.connect(&reader, ffi::SCARD_SHARE_DIRECT, 0)?;
        let result = f(handle);
        // LEAVE never waits; the handle was only ever ours.
        let _ = handle.disconnect(ffi::SCARD_LEAVE_CARD, ffi::SCARD_SHARE_DIRECT, 0);
        result
    })
}

/// The card's ATR without asking the reader's driver: from the connection, else from the
/// reader's state.
fn atr_of(manager: &mut Manager) -> Result<Vec<u8>> {
    match manager.card_handle() {
        Err(SCM_SCARD_E_NO_SMARTCARD) => {}
        handle => {
            let (atr, len) = handle?.atr()?;
            return Ok(atr[..len].to_vec());
        }
    }
    let reader = CString::new(manager.reader_name()?).map_err(|_| SCM_E_UNEXPECTED)?;
    let event = spare_contexts::with_spare(|context| context.reader_event(&reader))?;
    match event.atr() {
        [] => Err(SCM_SCARD_E_NO_SMARTCARD),
        atr => Ok(atr.to_vec()),
    }
}

impl Manager {
    /// `scm_get_attrib`'s value.
    pub fn get_attrib(&mut self, attribute: u32) -> Result<Vec<u8>> {
        let os = Os::HERE;
        if os != Os::Windows && is_name(attribute) {
            // pcsc-lite answers these itself, but not when a driver has touched the length
            // first (vpcd does: SCARD_E_INSUFFICIENT_BUFFER whatever the buffer); the name it
            // would give is the reader's name.
            return Ok(text_value(os, attribute, &self.reader_name()?));
        }
        let native = native_attribute(os, attribute);
        let value = on_reader(self, |handle| {
            let mut value = vec![0; ATTRIBUTE_ROOM];
            let len = handle.get_attrib(native, &mut value)?;
            value.truncate(len);
            Ok(value)
        })
        .map_err(|code| feature_code(os, code));
        match value {
            Err(SCM_SCARD_E_UNSUPPORTED_FEATURE) if attribute == SCM_ATTR_ATR_STRING => atr_of(self),
            Ok(value) if is_text(attribute) => Ok(text_value(os, attribute, &value)),
            value => value,
        }
    }

    pub fn set_attrib(&mut self, attribute: u32, value: &[u8]) -> Result<()> {
        let os = Os::HERE;
        let native = native_attribute(os, attribute);
        on_reader(self, |handle| handle.set_attrib(native, value)).map_err(|code| feature_code(os, code))
    }

    /// `scm_control`'s answer.
    pub fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>> {
        let os = Os::HERE;
        let native = control_code(os, code);
        on_reader(self, |handle| {
            let mut output = vec![0; scard::MAX_APDU];
            let len = handle.control(native, input, &mut output)?;
            output.truncate(len);
            Ok(output)
        })
        .map_err(|code| feature_code(os, code))
    }

    /// The native control code of the reader's feature `tag`.
    pub fn feature(&mut self, tag: u8) -> Result<u32> {
        let list = self.control(GET_FEATURE_REQUEST, &[])?;
        find_feature(&list, tag)?.ok_or(SCM_SCARD_E_UNSUPPORTED_FEATURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::*;

    const ALL: [Os; 3] = [Os::PcscLite, Os::Mac, Os::Windows];

    #[test]
    fn portable_control_codes_become_each_platforms() {
        assert_eq!(control_code(Os::PcscLite, 3400), 0x4200_0D48);
        assert_eq!(control_code(Os::Mac, 3400), 0x4200_0D48);
        assert_eq!(control_code(Os::Windows, 3400), 0x0031_3520);
        assert_eq!(control_code(Os::PcscLite, 0), 0x4200_0000);
        assert_eq!(control_code(Os::Windows, 1), 0x0031_0004);
        assert_eq!(control_code(Os::PcscLite, 0xFFFF), 0x4200_FFFF);
        assert_eq!(control_code(Os::Windows, 0xFFFF), 0x0033_FFFC);
        for os in ALL {
            // Native codes pass as they are, on every platform.
            for native in [0x1_0000, 0x4200_0D48, 0x0031_3520, 0x4233_0000, u32::MAX] {
                assert_eq!(control_code(os, native), native, "{os:?} {native:#x}");
            }
        }
    }

    #[test]
    fn pcsclite_unsupported_is_unsupported_feature_but_not_on_windows() {
        assert_eq!(feature_code(Os::PcscLite, 0x8010_001F_u32 as i32), SCM_SCARD_E_UNSUPPORTED_FEATURE);
        assert_eq!(feature_code(Os::Mac, 0x8010_001F_u32 as i32), SCM_SCARD_E_UNSUPPORTED_FEATURE);
        assert_eq!(feature_code(Os::Windows, 0x8010_001F_u32 as i32), SCM_SCARD_E_UNEXPECTED);
        // A Windows driver's refusal of an attribute or IOCTL, as WinSCard passes it on
        // (HRESULT_FROM_WIN32 of ERROR_NOT_SUPPORTED and ERROR_INVALID_FUNCTION).
        for refusal in [0x8007_0032_u32 as i32, 0x8007_0001_u32 as i32] {
            assert_eq!(feature_code(Os::Windows, refusal), SCM_SCARD_E_UNSUPPORTED_FEATURE);
            // pcsc-lite has no such codes.
            assert_eq!(feature_code(Os::PcscLite, refusal), refusal);
        }
        assert_eq!(feature_code(Os::Windows, SCM_E_HANDLE), SCM_E_HANDLE);
        for os in ALL {
            assert_eq!(feature_code(os, SCM_SCARD_E_UNSUPPORTED_FEATURE), SCM_SCARD_E_UNSUPPORTED_FEATURE);
            assert_eq!(feature_code(os, SCM_SCARD_W_REMOVED_CARD), SCM_SCARD_W_REMOVED_CARD);
        }
    }

    #[test]
    fn names_are_asked_in_their_wide_form_on_windows_only() {
        assert_eq!(native_attribute(Os::Windows, SCM_ATTR_DEVICE_FRIENDLY_NAME), 0x7FFF_0005);
        assert_eq!(native_attribute(Os::Windows, SCM_ATTR_DEVICE_SYSTEM_NAME), 0x7FFF_0006);
        for attribute in [SCM_ATTR_DEVICE_FRIENDLY_NAME, SCM_ATTR_DEVICE_SYSTEM_NAME, SCM_ATTR_VENDOR_NAME] {
            assert_eq!(native_attribute(Os::PcscLite, attribute), attribute);
            assert_eq!(native_attribute(Os::Mac, attribute), attribute);
        }
        for os in ALL {
            assert_eq!(native_attribute(os, SCM_ATTR_ATR_STRING), SCM_ATTR_ATR_STRING);
            assert_eq!(native_attribute(os, SCM_ATTR_VENDOR_NAME), SCM_ATTR_VENDOR_NAME);
        }
    }

    #[test]
    fn text_attributes_come_out_as_utf8_with_one_nul() {
        let name = "Lecteur \u{e9}\u{3b1} \u{1F4B3} 00";
        let wide: Vec<u8> = name.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
        let expected: Vec<u8> = name.bytes().chain([0]).collect();
        assert_eq!(text_value(Os::Windows, SCM_ATTR_DEVICE_FRIENDLY_NAME, &wide), expected);
        assert_eq!(text_value(Os::Windows, SCM_ATTR_DEVICE_SYSTEM_NAME, &wide[..wide.len() - 2]), expected);
        // An unpaired surrogate cannot be UTF-8.
        assert_eq!(
            text_value(Os::Windows, SCM_ATTR_DEVICE_FRIENDLY_NAME, &[0x41, 0, 0x00, 0xD8]),
            "A\u{FFFD}\0".as_bytes()
        );
        for os in [Os::PcscLite, Os::Mac] {
            assert_eq!(text_value(os, SCM_ATTR_DEVICE_FRIENDLY_NAME, name.as_bytes()), expected);
        }
        for os in ALL {
            // A missing NUL is added, extra ones dropped.
            assert_eq!(text_value(os, SCM_ATTR_VENDOR_NAME, b"Virtual"), b"Virtual\0");
            assert_eq!(text_value(os, SCM_ATTR_VENDOR_IFD_TYPE, b"vpcd\0\0"), b"vpcd\0");
            assert_eq!(text_value(os, SCM_ATTR_VENDOR_IFD_SERIAL_NO, b""), b"\0");
            // A vendor string in Latin-1 (or any non-UTF-8 bytes) still comes out as UTF-8.
            let latin1 = text_value(os, SCM_ATTR_VENDOR_NAME, b"Soci\xE9t\xE9 \xFF\0");
            assert_eq!(latin1, "Soci\u{FFFD}t\u{FFFD} \u{FFFD}\0".as_bytes(), "{os:?}");
            assert!(std::str::from_utf8(&latin1).is_ok());
            // A fixed-size field: what follows the first NUL is not part of the text.
            assert_eq!(text_value(os, SCM_ATTR_VENDOR_IFD_SERIAL_NO, b"1234\0\xAA\xBB\0"), b"1234\0");
        }
        assert!(is_text(SCM_ATTR_VENDOR_IFD_SERIAL_NO));
        assert!(!is_text(SCM_ATTR_VENDOR_IFD_VERSION), "a DWORD");
        assert!(!is_text(SCM_ATTR_ATR_STRING));
    }

    #[test]
    fn feature_lists_are_parsed_and_checked() {
        let list = [0x06, 4, 0x42, 0x33, 0x00, 0x06, 0x07, 4, 0x42, 0x33, 0x00, 0x07];
        assert_eq!(find_feature(&list, SCM_FEATURE_VERIFY_PIN_DIRECT as u8), Ok(Some(0x4233_0006)));
        assert_eq!(find_feature(&list, SCM_FEATURE_MODIFY_PIN_DIRECT as u8), Ok(Some(0x4233_0007)));
        assert_eq!(find_feature(&list, SCM_FEATURE_IFD_PIN_PROPERTIES as u8), Ok(None));
        assert_eq!(find_feature(&[], 6), Ok(None));
        // The first entry of a tag listed twice wins.
        assert_eq!(find_feature(&[6, 4, 0x42, 0, 0, 1, 6, 4, 0x42, 0, 0, 2], 6), Ok(Some(0x4200_0001)));
        // A code scm_control would read as a portable function number, and so turn into
        // another command than the one listed, is not handed out.
        for small in [[6, 4, 0, 0, 0x0D, 0x48], [6, 4, 0, 0, 0xFF, 0xFF], [6, 4, 0, 0, 0, 0]] {
            assert_eq!(find_feature(&small, 6), Err(SCM_SCARD_E_READER_UNSUPPORTED), "{small:?}");
            assert_eq!(find_feature(&small, 7), Ok(None), "another tag's code is not asked for");
        }
        assert_eq!(find_feature(&[6, 4, 0, 1, 0, 0], 6), Ok(Some(0x1_0000)));
        for malformed in
            [&[6u8][..], &[6, 4, 0, 0, 0], &[6, 2, 0, 1], &[6, 5, 0, 0, 0, 0, 1], &[6, 4, 0, 0, 0, 1, 7]]
        {
            assert_eq!(find_feature(malformed, 6), Err(SCM_SCARD_E_READER_UNSUPPORTED), "{malformed:?}");
        }
    }

    /// A seeded generator (xorshift64*), so that a failure is replayed from the seed printed.
    struct Xorshift(u64);

    impl Xorshift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    /// What a correct parser says of a list, written as differently as possible from
    /// `find_feature`: entry boundaries first, then the search.
    fn reference(list: &[u8], tag: u8) -> Result<Option<u32>> {
        if list.len() % 6 != 0 || list.chunks(6).any(|entry| entry[1] != 4) {
            return Err(SCM_SCARD_E_READER_UNSUPPORTED);
        }
        match list.chunks(6).find(|entry| entry[0] == tag) {
            Some([_, _, 0, 0, _, _]) => Err(SCM_SCARD_E_READER_UNSUPPORTED),
            entry => Ok(entry.map(|e| u32::from_be_bytes([e[2], e[3], e[4], e[5]]))),
        }
    }

    #[test]
    fn feature_lists_from_a_hostile_driver_never_crash_and_are_judged_right() {
        const CASES: usize = 20_000;
        let seed = std::env::var("SCM_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5EED_F00D_u64);
        eprintln!("feature list fuzz: {CASES} cases, seed {seed} (replay with SCM_SEED={seed})");
        let mut random = Xorshift(seed | 1);
        let mut valid = 0;
        for _ in 0..CASES {
            // Mostly well-formed lists with a few bytes disturbed, some pure noise.
            let entries = (random.next() % 8) as usize;
            let mut list: Vec<u8> = (0..entries)
                .flat_map(|_| {
                    // A quarter of the codes near the portable range, on either side of 0xFFFF.
                    let code = match random.next() % 4 {
                        0 => (random.next() % 0x2_0000) as u32,
                        _ => random.next() as u32,
                    }
                    .to_be_bytes();
                    [(random.next() % 20) as u8, 4, code[0], code[1], code[2], code[3]]
                })
                .collect();
            match random.next() % 4 {
                0 => list = (0..random.next() % 40).map(|_| random.next() as u8).collect(),
                1 if !list.is_empty() => {
                    let at = (random.next() as usize) % list.len();
                    list[at] = random.next() as u8;
                }
                2 => list.truncate(list.len().saturating_sub((random.next() % 3) as usize)),
                _ => {}
            }
            let tag = (random.next() % 20) as u8;
            let parsed = find_feature(&list, tag);
            assert_eq!(parsed, reference(&list, tag), "{list:02X?} tag {tag}");
            valid += usize::from(parsed.is_ok());
        }
        eprintln!("feature list fuzz: {valid} of {CASES} lists well-formed");
        assert!(valid > CASES / 10 && valid < CASES * 9 / 10, "both kinds were generated");
    }
}

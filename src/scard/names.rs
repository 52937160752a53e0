//! Reader names as each platform's PC/SC takes them. Inside the library a name is UTF-8 (a
//! `CString`); pcsc-lite and PCSC.framework take UTF-8 too, so on them nothing is converted.
//! WinSCard's A entry points (the only ones the `pcsc` crate binds) would read the bytes in the
//! ANSI code page and lose every name outside it; its W entry points take UTF-16, so on Windows
//! names go through those, converted at the call.

#[cfg(windows)]
pub use self::utf16::*;
#[cfg(not(windows))]
pub use self::utf8::*;

#[cfg(not(windows))]
mod utf8 {
    use std::ffi::CStr;

    pub use pcsc::ffi::{
        SCardConnect, SCardGetStatusChange, SCardListReaders, SCardStatus, SCARD_READERSTATE,
    };

    /// A unit of a name as PC/SC writes it.
    pub type Unit = u8;

    /// A name as PC/SC reads it (`as_ptr` gives the call's argument).
    pub fn to_native(name: &CStr) -> &CStr {
        name
    }

    /// Units PC/SC wrote (one name or a multi-string, NULs kept) as UTF-8.
    pub fn to_utf8(units: Vec<Unit>) -> Vec<u8> {
        units
    }
}

// The conversions are plain Rust: their tests run on every OS, the FFI below on Windows only.
#[cfg(any(windows, test))]
mod utf16 {
    // WinSCard's field names, as pcsc::ffi spells the A structure's: the same code fills either.
    #![allow(non_snake_case)]

    #[cfg(windows)]
    use std::ffi::c_void;
    use std::ffi::CStr;

    #[cfg(windows)]
    use pcsc::ffi::{ATR_BUFFER_SIZE, DWORD, LONG, SCARDCONTEXT, SCARDHANDLE};

    pub type Unit = u16;

    /// WinSCard's `SCARD_READERSTATEW`: `SCARD_READERSTATEA` with a UTF-16 name.
    #[cfg(windows)]
    #[repr(C)]
    pub struct SCARD_READERSTATE {
        pub szReader: *const u16,
        pub pvUserData: *mut c_void,
        pub dwCurrentState: DWORD,
        pub dwEventState: DWORD,
        pub cbAtr: DWORD,
        pub rgbAtr: [u8; ATR_BUFFER_SIZE],
    }

    // The W entry points, as mingw-w64's winscard.h and Microsoft's reference declare them.
    #[cfg(windows)]
    #[link(name = "winscard")]
    extern "system" {
        #[link_name = "SCardConnectW"]
        pub fn SCardConnect(
            hContext: SCARDCONTEXT,
            szReader: *const u16,
            dwShareMode: DWORD,
            dwPreferredProtocols: DWORD,
            phCard: *mut SCARDHANDLE,
            pdwActiveProtocol: *mut DWORD,
        ) -> LONG;

        #[link_name = "SCardGetStatusChangeW"]
        pub fn SCardGetStatusChange(
            hContext: SCARDCONTEXT,
            dwTimeout: DWORD,
            rgReaderStates: *mut SCARD_READERSTATE,
            cReaders: DWORD,
        ) -> LONG;

        #[link_name = "SCardListReadersW"]
        pub fn SCardListReaders(
            hContext: SCARDCONTEXT,
            mszGroups: *const u16,
            mszReaders: *mut u16,
            pcchReaders: *mut DWORD,
        ) -> LONG;

        #[link_name = "SCardStatusW"]
        pub fn SCardStatus(
            hCard: SCARDHANDLE,
            mszReaderNames: *mut u16,
            pcchReaderLen: *mut DWORD,
            pdwState: *mut DWORD,
            pdwProtocol: *mut DWORD,
            pbAtr: *mut u8,
            pcbAtrLen: *mut DWORD,
        ) -> LONG;
    }

    /// A name as UTF-16, NUL-terminated (`as_ptr` gives the call's argument), exactly the units
    /// it came from: a name is UTF-8, or one WinSCard gave (`to_utf8`), whose unpaired surrogates
    /// are each three bytes that decode here to that surrogate again.
    pub fn to_native(name: &CStr) -> Vec<u16> {
        let bytes = name.to_bytes();
        let mut units = Vec::with_capacity(bytes.len() + 1);
        let (mut start, mut at) = (0, 0);
        while at < bytes.len() {
            match encoded_surrogate(&bytes[at..]) {
                Some(surrogate) => {
                    units.extend(String::from_utf8_lossy(&bytes[start..at]).encode_utf16());
                    units.push(surrogate);
                    at += 3;
                    start = at;
                }
                None => at += 1,
            }
        }
        units.extend(String::from_utf8_lossy(&bytes[start..]).encode_utf16());
        units.push(0);
        units
    }

    /// The surrogate whose UTF-8-style encoding (ED A0..BF 80..BF) starts `bytes`, if one does.
    /// UTF-8 has no such sequence (ED is followed by 80..9F there), so no name is misread.
    fn encoded_surrogate(bytes: &[u8]) -> Option<u16> {
        match *bytes {
            [0xED, high @ 0xA0..=0xBF, low @ 0x80..=0xBF, ..] => {
                Some(0xD000 | u16::from(high & 0x3F) << 6 | u16::from(low & 0x3F))
            }
            _ => None,
        }
    }

    /// Units WinSCard wrote (one name or a multi-string, NULs kept) as UTF-8. An unpaired
    /// surrogate, which UTF-8 cannot carry, is encoded the way UTF-8 encodes other code points
    /// (WTF-8): the name is then not UTF-8, as the header says a driver's name may be, and
    /// `to_native` gives back the very units, so that PC/SC finds the reader by it. U+FFFD in its
    /// place would name no reader: a borrowed handle on it could never learn its share mode.
    pub fn to_utf8(units: Vec<Unit>) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(units.len());
        for decoded in char::decode_utf16(units) {
            match decoded {
                Ok(c) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                Err(unpaired) => {
                    let unit = unpaired.unpaired_surrogate();
                    bytes.extend([
                        0xE0 | (unit >> 12) as u8,
                        0x80 | (unit >> 6 & 0x3F) as u8,
                        0x80 | (unit & 0x3F) as u8,
                    ]);
                }
            }
        }
        bytes
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn names_go_to_utf16_with_their_nul() {
            assert_eq!(to_native(c"Lab A"), [0x4C, 0x61, 0x62, 0x20, 0x41, 0]);
            // Outside Latin-1 and outside the BMP: no ANSI code page holds both.
            let name = c"Lecteur \u{e9}\u{3b1} \u{1F4B3} 00";
            let units = to_native(name);
            assert_eq!(units.last(), Some(&0));
            assert_eq!(String::from_utf16(&units[..units.len() - 1]).unwrap(), name.to_str().unwrap());
            assert!(units.contains(&0xD83D), "U+1F4B3 is a surrogate pair");
        }

        #[test]
        fn names_and_multi_strings_come_back_as_utf8() {
            let multi: Vec<u16> = "Lab \u{e9} 00\0Lab \u{3b1} 01\0\0".encode_utf16().collect();
            assert_eq!(to_utf8(multi), "Lab \u{e9} 00\0Lab \u{3b1} 01\0\0".as_bytes());
            assert_eq!(to_utf8(Vec::new()), b"");
            assert_eq!(to_utf8(vec![0x41, 0xD800, 0x42]), b"A\xED\xA0\x80B");
        }

        /// A reader name with an unpaired surrogate (WinSCard takes any UTF-16) came back from
        /// PC/SC as U+FFFD, a name no reader has: every call naming it failed with
        /// UNKNOWN_READER.
        #[test]
        fn unpaired_surrogates_survive_the_round_trip() {
            let names: [&[u16]; 6] = [
                &[0x4C, 0xD800, 0x42],
                &[0xDC00],
                &[0xDBFF, 0x41, 0xDFFF],
                &[0xDC00, 0xD800],
                &[0xD83D, 0xDCB3, 0xDFFF, 0xE9],
                &[0xFFFD, 0xD7FF, 0xE000],
            ];
            for units in names {
                let utf8 = std::ffi::CString::new(to_utf8(units.to_vec())).unwrap();
                assert_eq!(to_native(&utf8), [units, &[0]].concat(), "{units:04X?}");
            }
            // Not UTF-8, so scm_attach_by_ifd refuses it as it does any name that is not.
            assert!(std::str::from_utf8(&to_utf8(vec![0x41, 0xDC00])).is_err());
        }

        #[test]
        fn a_name_survives_the_round_trip() {
            let name = c"\u{420}\u{438}\u{434}\u{435}\u{440} \u{8aad}\u{307f}\u{53d6}\u{308a} 00";
            let mut units = to_native(name);
            units.pop();
            assert_eq!(to_utf8(units), name.to_bytes());
        }

        #[cfg(windows)]
        #[test]
        fn the_reader_state_has_winscard_layout() {
            // 64-bit: pointer, pointer, 3 DWORDs, 36 ATR bytes, padded to 8; 32-bit: 4-byte units.
            let size = std::mem::size_of::<SCARD_READERSTATE>();
            assert_eq!(size, if cfg!(target_pointer_width = "64") { 64 } else { 56 });
        }
    }
}

//! How the caller names a file (`SCM_REF_BY_NAME`, `SCM_REF_BY_ID`, `SCM_REF_BY_SHORT_ID` and a
//! text) and where that is on the card: a [`Location`], always resolved from the MF or from a
//! DF name, never from whatever the card happens to have selected. Other objects and
//! `scm_transmit` share the card's selection, and a reset loses it, so each call selects what it
//! works on afresh from a location the object keeps.

use crate::hresult::*;
use crate::scard::Result;

/// The MF's file identifier: a path that starts with it is absolute.
pub(crate) const MF: u16 = 0x3F00;
/// A DF name is at most 16 bytes (ISO 7816-4, 5.3.1.3).
const MAX_DF_NAME: usize = 16;
/// The identifiers below the MF or a DF name that one SELECT by path can carry in a short
/// APDU's 255 data bytes.
pub(crate) const MAX_DEPTH: usize = 127;

/// A file as the caller named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A DF name (SELECT by name).
    Name(Vec<u8>),
    /// File identifiers from the MF (`absolute`, the leading 3F00 left out) or from the current
    /// directory.
    Path { absolute: bool, ids: Vec<u16> },
    /// A short EF identifier, 1 to 30, in the current directory.
    Short(u8),
}

/// Where a file is: the identifiers below the MF, or below a DF selected by name. Either way it
/// can be selected from nothing, whatever the card's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The MF itself when empty.
    FromMf(Vec<u16>),
    FromName {
        name: Vec<u8>,
        below: Vec<u16>,
    },
}

impl Default for Location {
    fn default() -> Location {
        Location::FromMf(Vec::new())
    }
}

fn hex_digit(byte: u8) -> Result<u8> {
    match byte {
        b'0'..=b'9' => Ok(byte - b'0'),
        b'a'..=b'f' => Ok(byte - b'a' + 10),
        b'A'..=b'F' => Ok(byte - b'A' + 10),
        _ => Err(SCM_E_INVALIDARG),
    }
}

/// Pairs of hex digits as bytes; an odd count is invalid.
fn hex_bytes(text: &[u8]) -> Result<Vec<u8>> {
    if text.len() % 2 != 0 {
        return Err(SCM_E_INVALIDARG);
    }
    text.chunks(2).map(|pair| Ok(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?)).collect()
}

/// `XXXX` groups of hex digits, with optional `/` between identifiers (never empty between two,
/// nor at either end). FFFF and 3FFF are reserved (ISO 7816-4, 7.1.1) and 3F00 may only lead.
fn identifiers(text: &[u8]) -> Result<Vec<u16>> {
    let mut ids = Vec::new();
    for segment in text.split(|&byte| byte == b'/') {
        if segment.is_empty() || segment.len() % 4 != 0 {
            return Err(SCM_E_INVALIDARG);
        }
        for pair in hex_bytes(segment)?.chunks(2) {
            let id = u16::from_be_bytes([pair[0], pair[1]]);
            if id == 0xFFFF || id == 0x3FFF || (id == MF && !ids.is_empty()) {
                return Err(SCM_E_INVALIDARG);
            }
            ids.push(id);
        }
    }
    Ok(ids)
}

impl Reference {
    /// Parses the caller's reference type and text (without its NUL). Anything malformed is
    /// `SCM_E_INVALIDARG`.
    pub fn parse(kind: u32, text: &[u8]) -> Result<Reference> {
        match kind {
            0 => {
                let name = hex_bytes(text)?;
                match name.len() {
                    1..=MAX_DF_NAME => Ok(Reference::Name(name)),
                    _ => Err(SCM_E_INVALIDARG),
                }
            }
            1 => {
                let mut ids = identifiers(text)?;
                let absolute = ids.first() == Some(&MF);
                if absolute {
                    ids.remove(0);
                }
                Ok(Reference::Path { absolute, ids })
            }
            // Decimal, as ISO 7816-4 and the ABI write short EF identifiers: "1" to "30".
            2 => match text {
                [digit @ b'1'..=b'9'] => Ok(Reference::Short(digit - b'0')),
                [tens @ b'1'..=b'3', units @ b'0'..=b'9'] => match (tens - b'0') * 10 + (units - b'0') {
                    sfi @ 10..=30 => Ok(Reference::Short(sfi)),
                    _ => Err(SCM_E_INVALIDARG),
                },
                _ => Err(SCM_E_INVALIDARG),
            },
            _ => Err(SCM_E_INVALIDARG),
        }
    }
}

impl Location {
    /// Where a reference by name or by identifiers leads from this directory; `None` for a short
    /// EF identifier, which no SELECT takes. A path deeper than one SELECT can carry is
    /// `SCM_E_INVALIDARG`.
    pub fn resolve(&self, reference: &Reference) -> Result<Option<Location>> {
        let location = match reference {
            Reference::Name(name) => Location::FromName { name: name.clone(), below: Vec::new() },
            Reference::Path { absolute: true, ids } => Location::FromMf(ids.clone()),
            Reference::Path { absolute: false, ids } => {
                let mut location = self.clone();
                let below = match &mut location {
                    Location::FromMf(below) | Location::FromName { below, .. } => below,
                };
                below.extend_from_slice(ids);
                location
            }
            Reference::Short(_) => return Ok(None),
        };
        match location.below().len() {
            0..=MAX_DEPTH => Ok(Some(location)),
            _ => Err(SCM_E_INVALIDARG),
        }
    }

    /// The identifiers below the MF or the named DF.
    pub fn below(&self) -> &[u16] {
        match self {
            Location::FromMf(below) | Location::FromName { below, .. } => below,
        }
    }

    /// The location one level up, for a file created in its parent: `None` at the MF or at a
    /// DF selected by name, whose parent has no name here.
    pub fn parent(&self) -> Option<Location> {
        let mut parent = self.clone();
        match &mut parent {
            Location::FromMf(below) | Location::FromName { below, .. } => below.pop()?,
        };
        Some(parent)
    }

    /// The text `scm_file_get_current_dir` gives, NUL-terminated: `3F00` and the identifiers
    /// below it, or the DF name's hex digits and the identifiers below it, `/` between each,
    /// upper-case hex digits.
    pub fn text(&self) -> Vec<u8> {
        use std::fmt::Write;
        let mut text = String::new();
        match self {
            Location::FromMf(_) => text.push_str("3F00"),
            Location::FromName { name, .. } => name.iter().for_each(|byte| {
                let _ = write!(text, "{byte:02X}");
            }),
        }
        for id in self.below() {
            let _ = write!(text, "/{id:04X}");
        }
        text.push('\0');
        text.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(absolute: bool, ids: &[u16]) -> Reference {
        Reference::Path { absolute, ids: ids.to_vec() }
    }

    #[test]
    fn names_are_hex_bytes_of_1_to_16() {
        assert_eq!(Reference::parse(0, b"A000000063"), Ok(Reference::Name(vec![0xA0, 0, 0, 0, 0x63])));
        assert_eq!(Reference::parse(0, b"a0"), Ok(Reference::Name(vec![0xA0])));
        assert_eq!(Reference::parse(0, b"A00"), Err(SCM_E_INVALIDARG));
        assert_eq!(Reference::parse(0, b""), Err(SCM_E_INVALIDARG));
        assert_eq!(Reference::parse(0, b"A0/00"), Err(SCM_E_INVALIDARG));
        assert_eq!(Reference::parse(0, b"G0"), Err(SCM_E_INVALIDARG));
        assert!(Reference::parse(0, &[b'1'; 32]).is_ok());
        assert_eq!(Reference::parse(0, &[b'1'; 34]), Err(SCM_E_INVALIDARG));
    }

    #[test]
    fn identifiers_and_paths() {
        assert_eq!(Reference::parse(1, b"3F00"), Ok(path(true, &[])));
        assert_eq!(Reference::parse(1, b"3f00/5000/5001"), Ok(path(true, &[0x5000, 0x5001])));
        assert_eq!(Reference::parse(1, b"3F0050005001"), Ok(path(true, &[0x5000, 0x5001])));
        assert_eq!(Reference::parse(1, b"3F005000/5001"), Ok(path(true, &[0x5000, 0x5001])));
        assert_eq!(Reference::parse(1, b"5001"), Ok(path(false, &[0x5001])));
        assert_eq!(Reference::parse(1, b"5000/5001"), Ok(path(false, &[0x5000, 0x5001])));
        for bad in [
            &b""[..],
            b"/",
            b"/5000",
            b"5000/",
            b"5000//5001",
            b"500",
            b"50001",
            b"5000/3F00",
            b"FFFF",
            b"3FFF",
            b"50 0",
        ] {
            assert_eq!(Reference::parse(1, bad), Err(SCM_E_INVALIDARG), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn short_identifiers_are_decimal_1_to_30() {
        assert_eq!(Reference::parse(2, b"1"), Ok(Reference::Short(1)));
        assert_eq!(Reference::parse(2, b"30"), Ok(Reference::Short(30)));
        assert_eq!(Reference::parse(2, b"17"), Ok(Reference::Short(17)));
        for bad in [&b"0"[..], b"31", b"01", b"1E", b"", b"300", b"-1", b"3 "] {
            assert_eq!(Reference::parse(2, bad), Err(SCM_E_INVALIDARG), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(Reference::parse(3, b"1"), Err(SCM_E_INVALIDARG));
        assert_eq!(Reference::parse(u32::MAX, b"1"), Err(SCM_E_INVALIDARG));
    }

    #[test]
    fn relative_paths_extend_the_current_directory() {
        let mf = Location::default();
        let df = mf.resolve(&path(false, &[0x5000])).unwrap().unwrap();
        assert_eq!(df, Location::FromMf(vec![0x5000]));
        assert_eq!(
            df.resolve(&path(false, &[0x5001])).unwrap(),
            Some(Location::FromMf(vec![0x5000, 0x5001]))
        );
        assert_eq!(df.resolve(&path(true, &[0x6000])).unwrap(), Some(Location::FromMf(vec![0x6000])));
        let app = df.resolve(&Reference::Name(vec![0xA0, 1])).unwrap().unwrap();
        assert_eq!(app, Location::FromName { name: vec![0xA0, 1], below: vec![] });
        let inner = app.resolve(&path(false, &[0x1000, 0x1001])).unwrap().unwrap();
        assert_eq!(inner, Location::FromName { name: vec![0xA0, 1], below: vec![0x1000, 0x1001] });
        assert_eq!(inner.resolve(&Reference::Short(3)), Ok(None));
        assert_eq!(inner.text(), b"A001/1000/1001\0");
        assert_eq!(mf.text(), b"3F00\0");
        assert_eq!(Location::FromMf(vec![0x5000, 0xAB]).text(), b"3F00/5000/00AB\0");
    }

    #[test]
    fn parents_and_depth() {
        assert_eq!(Location::default().parent(), None);
        assert_eq!(Location::FromMf(vec![0x5000, 0x5001]).parent(), Some(Location::FromMf(vec![0x5000])));
        assert_eq!(Location::FromName { name: vec![1], below: vec![] }.parent(), None);
        let deep = Location::FromMf(vec![0x1000; MAX_DEPTH]);
        assert_eq!(deep.resolve(&path(false, &[0x1000])), Err(SCM_E_INVALIDARG));
        assert!(Location::FromMf(vec![0x1000; MAX_DEPTH - 1]).resolve(&path(false, &[0x1000])).is_ok());
    }
}

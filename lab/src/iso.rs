//! An ISO/IEC 7816-4 card for the lab: an MF with DFs and EFs (transparent ones, one past
//! 32 KiB, and a record one), a PIN with a retry counter and a PUK, GET CHALLENGE and INTERNAL
//! / EXTERNAL AUTHENTICATE, with T=0 behaviour, command chaining and extended length
//! selectable, and hostile modes for robustness tests.
//!
//! The constants below name the contents so tests never repeat magic values; the hostile modes
//! are described on [`Hostile`]'s variants.
//!
//! # Contents
//!
//! | const | value | notes |
//! |---|---|---|
//! | `MF` | `0x3F00` | |
//! | `EF_ATR` | `0x2F01` | under MF, transparent, no SFI: `47 03 B6 01 cc` (card capabilities; cc as the ATR's, but with extended length even when `ef_atr` keeps it out of the ATR) and, with extended length, `7F66 08 02 02 FF FF 02 02 FF FF` (largest command / response APDU, header and SW included: 65 535; 4 096 with `EfAtr::Only` or `EfAtr::Limits`, malformed with `EfAtr::Malformed`) |
//! | `DF_ID` | `0x5000` | under MF |
//! | `DF_NAME` | `F0 53 43 4D 49 53 4F` | SELECT P1 04 |
//! | `EF_SMALL`, `SFI_SMALL` | `0x5001`, 1 | transparent, content `SMALL_CONTENT` = b"scardmanage ISO lab card: EF 5001" (33 bytes) |
//! | `EF_BIG`, `SFI_BIG`, `BIG_SIZE` | `0x5002`, 2, 40 000 | transparent, size exactly 40 000; content `big_content()`: byte i = `(i % 251) as u8` |
//! | `EF_RECORDS`, `SFI_RECORDS` | `0x5003`, 3 | linear fixed, `RECORD_LEN` 16, `RECORD_CAPACITY` 8 records, initially `RECORD_COUNT` 3: record n (1-based) = `initial_record(n)` = 16 bytes of `n` |
//! | `EF_SECRET`, `SFI_SECRET` | `0x5004`, 4 | transparent, `SECRET_CONTENT` = b"PIN-protected"; READ/UPDATE need PIN 0x81 verified, else 69 82 |
//! | `EF_READ_ONLY`, `SFI_READ_ONLY` | `0x5005`, 5 | transparent, `READ_ONLY_CONTENT` = b"read-only"; UPDATE → 69 85 |
//! | `DF_SUB` | `0x5100` | DF under DF 5000, no name |
//! | `EF_SUB` | `0x5101` | transparent under 5100, `SUB_CONTENT` = b"nested", no SFI |
//! | `PIN_REF` | `0x81` | `PIN` = b"1234", `PIN_TRIES` 3 |
//! | `PUK` | b"12345678" (8 bytes) | `PUK_TRIES` 5; RESET RETRY COUNTER P2 0x81 |
//! | `PIN2_REF` | `0x82` | `PIN2` = b"0000": no retry counter (wrong → 63 00, never blocks) |
//! | `AUTH_KEY_REF` | `0x01` | INTERNAL/EXTERNAL AUTHENTICATE P2 (00 also accepted) |
//! | `AUTH_KEY` | `[u8; 8]` = b"SCM-KEY!" | `auth_response(data)[i] = data[i] ^ AUTH_KEY[i % 8]` |
//! | `CARD_MEMORY` | 131 072 | total EF bytes the card holds; CREATE beyond → 6A 84 |
//! | `MAX_RESPONSE_DATA` | 65 533 | vpcd frames ≤ 65 535 bytes incl. SW |
//! | `LONG_CHAIN_BYTES` | 16 777 216 | bytes the `LongChain` mode hands out before its 90 00 |
//!
//! ATR: T=1 `3B 87 01 80 31 98 73 B6 01 cc TCK`, T=0 `3B 07 80 31 98 73 B6 01 cc`; cc = 0x80 (chaining) +
//! 0x40 (extended Lc/Le) + 0x20 (7F66 in EF.ATR). Default options: `3B 87 01 80 31 98 73 B6 01 E0 TCK`.
//! With `ef_atr: EfAtr::Only` (`IsoOptions::EF_ATR_ONLY`) or `EfAtr::Malformed` the ATR leaves
//! 0x40 and 0x20 out (`... B6 01 80 TCK`) and only EF.ATR announces extended length, for APDUs of
//! at most `EF_ATR_MAX_APDU` (4 096) bytes: longer ones, or an Ne above 4 094, answer 67 00.
//! With `EfAtr::Limits` the ATR announces extended length as by default, and the card holds to
//! the same 4 096 bytes, which only EF.ATR's `7F66` tells.
//!
//! # Commands (CLA 00, or 10 when chaining; CLA 80..FE go to the default applet: ECHO 80 10, READ 80 20)
//!
//! Lengths: short and (when `extended` and not `t0`) extended APDUs, cases 1–4. Malformed lengths → 67 00.
//! Le `00` (short) / `0000` (extended) means "all available up to 256 / 65 536" (no 62 82 warning);
//! an explicit Le larger than what is available → the data and 62 82 (READ BINARY), and an
//! answer longer than the Le → 6C xx (xx = its length; 67 00 if over 256). CLA with logical-channel
//! bits → 68 81, secure-messaging bits → 68 82, CLA 20..3F / FF → 6E 00, unknown INS → 6D 00.
//!
//! - **SELECT A4**: P1 00 (MF by 3F00 or empty data; else an id among the current DF, its
//!   children, its parent and the parent's children), 01 child DF, 02 EF under current DF, 03 parent
//!   (no data), 04 DF name (P2 low bits 00 first/01 last; 02 next/03 previous → 6A 82), 08 path from
//!   MF (a leading 3F00 is accepted), 09 path from current DF. P2 (& 0xFC): 00 FCI (`6F`), 04 FCP
//!   (`62`), 08 FMD (`64`, empty), 0C nothing. Not found 6A 82; bad P1/P2 6A 86; data inconsistent
//!   with P1 (odd length, empty where needed) 6A 87. Deactivated file: selected, answer 62 83 (with
//!   FCP/FCI if asked).
//!   FCP content: `82` (EF transparent `01`; linear fixed `02 21 00 10 nn`: record len 16, nn = current
//!   record count; DF `38`), `83` file id, `84` DF name (named DFs), `80` size (2 bytes, 3 if >65535;
//!   record EF: capacity×record length), `88` SFI (one byte, SFI << 3), `8A` life cycle (`05`
//!   activated, `04` deactivated).
//! - **READ BINARY B0**: P1 bit 8 set → SFI in P1 bits 5–1 and offset P2 (that EF becomes current);
//!   else offset P1P2 (15 bits). **B1**: P1P2 `0000` current EF, `00 01..1E` SFI, else a file id
//!   under the current DF; data `54 L offset` (L 1–3); response `53 L data` whose whole length fits
//!   Ne. Offset ≥ size → 6B 00. No current EF → 69 86; record EF → 69 81; PIN needed → 69 82;
//!   deactivated → 69 85; no Le → 67 00.
//! - **UPDATE BINARY D6 / D7**: same addressing; D7 data `54 L offset` then `53 L data`. Past the end
//!   (offset ≤ size) → 6A 84; offset > size → 6B 00; read-only → 69 85; malformed D7 data → 6A 80.
//! - **READ RECORD B2** (P2 = SFI<<3 | 4, SFI 0 = current EF; other P2 low bits → 6A 86), **UPDATE
//!   RECORD DC** (same; data exactly 16 bytes else 67 00), **APPEND RECORD E2** (P1 00, P2 = SFI<<3;
//!   full → 6A 84). Record not found (also P1 00) 6A 83; Le shorter than the record → 6C 10.
//! - **CREATE FILE E0** (P1P2 0000, data `62 L {82, 83, [80], [88], [84]}`) in the current DF; new
//!   file becomes current. EF 82 `01` (80 = size) or `02 21 00 LL[ NN]` (80 = capacity bytes, records
//!   of LL); DF 82 `38` (84 name optional). Id exists 6A 89, name exists 6A 8A, bad FCP 6A 80, no
//!   memory 6A 84. Created files: open access, content zeros.
//! - **DELETE FILE E4**, **DEACTIVATE FILE 04**, **ACTIVATE FILE 44**: P1 as SELECT (00, 01, 02, 04,
//!   08, 09), data the id/name/path; empty data = the current file (EF if any, else DF). Deleting MF
//!   → 69 85. DEACTIVATE: later SELECT answers 62 83, READ/UPDATE 69 85; ACTIVATE undoes it.
//! - **VERIFY 20**: P1 00, P2 0x81/0x82. Empty data: 90 00 if verified, else 63 Cx (x tries
//!   left; 0x82: 63 00), blocked → 69 83. Right code: 90 00 (counter back to 3). Wrong: 63 Cx
//!   (x after the decrement; 63 C0 on the last), verified state cleared. P1 FF (empty data): reset
//!   verified state → 90 00. Unknown ref 6A 88.
//! - **CHANGE REFERENCE DATA 24**: P1 00, data old ‖ new (old = current code's length; no new part
//!   → 67 00), wrong old → 63 Cx like VERIFY, right old restores the counter (verified state unchanged); P1 01 (new only) needs the reference verified else 69 82. New code 4–16
//!   bytes else 6A 80.
//! - **RESET RETRY COUNTER 2C**: P2 0x81. P1 00 data PUK ‖ new PIN; P1 01 data PUK (counter reset
//!   only). Wrong PUK 63 Cx (PUK tries), PUK blocked 69 83.
//! - **GET CHALLENGE 84**: P1P2 0000, Le 1–256 (00 = 256) → that many random bytes (remembered for
//!   EXTERNAL AUTHENTICATE). No Le / Le > 256 → 67 00.
//! - **INTERNAL AUTHENTICATE 88**: P1 00, P2 00/01; data 1–256 bytes → `auth_response(data)`.
//! - **EXTERNAL AUTHENTICATE 82**: P1 00, P2 00/01; data must equal `auth_response(last challenge)`
//!   → 90 00, else 63 00; no challenge since reset → 69 85. The challenge is used once.
//! - **GET RESPONSE C0**: P1P2 0000; see `t0`. Nothing pending → 69 85.
//! - Chaining (CLA 10, `chaining`): parts with the same INS P1 P2 answer 90 00 and accumulate; the
//!   last part (CLA 00) runs the command on all the data. Other INS/P1/P2 mid-chain → 68 83 (chain
//!   dropped). Over 65 535 bytes in total → 67 00.
//!
//! ```ignore
//! let (card, iso) = scardmanage_lab::iso::card(IsoOptions::default());
//! let lease = scardmanage_lab::lease_with(card);
//! lease.insert();
//! iso.set_hostile(Hostile::EndlessGetResponse);
//! ```

mod apdu;
mod commands;
mod engine;
mod files;

use crate::card::{Reply, VirtualCard};
use engine::Card;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The MF's file identifier.
pub const MF: u16 = 0x3F00;
/// EF.ATR/INFO under the MF: card capabilities (`47`) and, when extended length is on, the
/// extended length information (`7F66`).
pub const EF_ATR: u16 = 0x2F01;
/// The application DF under the MF.
pub const DF_ID: u16 = 0x5000;
/// Its DF name (AID): `F0` (proprietary) and "SCMISO".
pub const DF_NAME: &[u8] = &[0xF0, 0x53, 0x43, 0x4D, 0x49, 0x53, 0x4F];
/// A small transparent EF in the DF.
pub const EF_SMALL: u16 = 0x5001;
pub const SFI_SMALL: u8 = 1;
pub const SMALL_CONTENT: &[u8] = b"scardmanage ISO lab card: EF 5001";
/// A transparent EF of [`BIG_SIZE`] bytes in the DF, initially [`big_content`].
pub const EF_BIG: u16 = 0x5002;
pub const SFI_BIG: u8 = 2;
pub const BIG_SIZE: usize = 40_000;
/// A linear-fixed record EF in the DF: [`RECORD_COUNT`] records of [`RECORD_LEN`] bytes
/// ([`initial_record`]), room for [`RECORD_CAPACITY`].
pub const EF_RECORDS: u16 = 0x5003;
pub const SFI_RECORDS: u8 = 3;
pub const RECORD_LEN: usize = 16;
pub const RECORD_COUNT: usize = 3;
pub const RECORD_CAPACITY: usize = 8;
/// A transparent EF in the DF that reads and updates only after [`PIN`] was verified (69 82
/// before).
pub const EF_SECRET: u16 = 0x5004;
pub const SFI_SECRET: u8 = 4;
pub const SECRET_CONTENT: &[u8] = b"PIN-protected";
/// A transparent EF in the DF that refuses UPDATE BINARY (69 85).
pub const EF_READ_ONLY: u16 = 0x5005;
pub const SFI_READ_ONLY: u8 = 5;
pub const READ_ONLY_CONTENT: &[u8] = b"read-only";
/// A DF without a name inside [`DF_ID`], holding [`EF_SUB`].
pub const DF_SUB: u16 = 0x5100;
pub const EF_SUB: u16 = 0x5101;
pub const SUB_CONTENT: &[u8] = b"nested";
/// The PIN's reference (VERIFY P2), its factory value and retry counter.
pub const PIN_REF: u8 = 0x81;
pub const PIN: &[u8] = b"1234";
pub const PIN_TRIES: u8 = 3;
/// The PUK that RESET RETRY COUNTER of [`PIN_REF`] takes, and its own retry counter.
pub const PUK: &[u8] = b"12345678";
pub const PUK_TRIES: u8 = 5;
/// A second reference without retry counter: a wrong code answers 63 00 and never blocks.
pub const PIN2_REF: u8 = 0x82;
pub const PIN2: &[u8] = b"0000";
/// The key of INTERNAL and EXTERNAL AUTHENTICATE (P2; 00 is accepted too).
pub const AUTH_KEY_REF: u8 = 0x01;
pub const AUTH_KEY: [u8; 8] = *b"SCM-KEY!";
/// Bytes of EF data the card holds in total; CREATE FILE beyond answers 6A 84.
pub const CARD_MEMORY: usize = 131_072;
/// The most response data one APDU carries: vpcd frames a response (status word included)
/// with a 16-bit length.
pub const MAX_RESPONSE_DATA: usize = 65_533;
/// What [`Hostile::LongChain`] hands out through GET RESPONSE before its final 90 00.
pub const LONG_CHAIN_BYTES: usize = 1 << 24;

/// The factory content of [`EF_BIG`]: byte `i` is `i % 251` (a period that is not a power of
/// two, so a misplaced block shows).
pub fn big_content() -> Vec<u8> {
    (0..BIG_SIZE).map(|i| (i % 251) as u8).collect()
}

/// The factory content of record `n` (1-based) of [`EF_RECORDS`]: [`RECORD_LEN`] bytes `n`.
pub fn initial_record(n: u8) -> [u8; RECORD_LEN] {
    [n; RECORD_LEN]
}

/// What INTERNAL AUTHENTICATE answers to `data`, and what EXTERNAL AUTHENTICATE expects for
/// the last challenge: `data[i] ^ AUTH_KEY[i % 8]`.
pub fn auth_response(data: &[u8]) -> Vec<u8> {
    data.iter().zip(AUTH_KEY.iter().cycle()).map(|(d, k)| d ^ k).collect()
}

/// How the card talks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsoOptions {
    /// The ATR offers T=0 only. Answers with data to case-4 commands (a command with data but
    /// no Le counts as case 4 with Ne 256: a T=0 transport drops that Le) or to commands without
    /// Le are `61 xx` and come through GET RESPONSE (at most 256 bytes each); a case-2
    /// command whose Le is not the exact number of bytes available answers `6C xx`. Implies
    /// short APDUs only: extended ones answer 67 00 and the ATR does not announce them.
    pub t0: bool,
    /// Extended-length APDUs are accepted (else 67 00) and announced: the ATR's card
    /// capabilities (compact-TLV `73`, third byte bits 0x40 and 0x20) and EF.ATR's `7F66`.
    pub extended: bool,
    /// Command chaining (CLA bit 0x10) is accepted (else 68 84) and announced (card
    /// capabilities third byte bit 0x80).
    pub chaining: bool,
    /// Where extended length is announced (with `extended`; else nothing changes).
    pub ef_atr: EfAtr,
}

/// Where a card with extended length announces it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EfAtr {
    /// In the ATR and in EF.ATR, whose `7F66` gives 65 535 for both APDUs.
    #[default]
    WithAtr,
    /// In EF.ATR only: the ATR's card capabilities leave out 0x40 and 0x20, EF.ATR's `47` has
    /// them and its `7F66` gives [`EF_ATR_MAX_APDU`] for the largest command and response APDU.
    /// The card holds to that: a longer command APDU, or an Ne above `EF_ATR_MAX_APDU - 2`,
    /// answers 67 00.
    Only,
    /// Hostile: as `Only` (the same ATR, limit and 67 00), but EF.ATR is malformed TLV: its
    /// `7F66` claims a length of 4 GiB with four bytes after it.
    Malformed,
    /// In the ATR, whose card capabilities also say (0x20) that EF.ATR holds the limits: its
    /// `7F66` gives [`EF_ATR_MAX_APDU`], held to as with `Only`.
    Limits,
}

/// The largest command and response APDU (header and status word included) of a card whose
/// extended length is announced in EF.ATR only ([`EfAtr::Only`], [`EfAtr::Malformed`]), or
/// whose ATR leaves the limits to EF.ATR ([`EfAtr::Limits`]).
pub const EF_ATR_MAX_APDU: usize = 4096;

impl IsoOptions {
    /// A T=0 card: short APDUs, 61xx and 6Cxx, chaining.
    pub const T0: IsoOptions =
        IsoOptions { t0: true, extended: false, chaining: true, ef_atr: EfAtr::WithAtr };
    /// A T=1 card without extended length: short APDUs, chaining.
    pub const SHORT: IsoOptions =
        IsoOptions { t0: false, extended: false, chaining: true, ef_atr: EfAtr::WithAtr };
    /// A T=1 card whose extended length (APDUs up to [`EF_ATR_MAX_APDU`]) only EF.ATR announces.
    pub const EF_ATR_ONLY: IsoOptions =
        IsoOptions { t0: false, extended: true, chaining: true, ef_atr: EfAtr::Only };

    fn extended_length(self) -> bool {
        self.extended && !self.t0
    }

    /// The largest APDU the card takes, when EF.ATR alone announces extended length.
    pub(crate) fn apdu_limit(self) -> Option<usize> {
        (self.extended_length() && self.ef_atr != EfAtr::WithAtr).then_some(EF_ATR_MAX_APDU)
    }

    /// The third byte of the card capabilities, announcing extended length or not.
    fn capabilities(self, extended: bool) -> u8 {
        (if self.chaining { 0x80 } else { 0 }) | (if extended { 0x60 } else { 0 })
    }

    /// ... in the ATR.
    fn atr_capabilities(self) -> u8 {
        self.capabilities(self.extended_length() && matches!(self.ef_atr, EfAtr::WithAtr | EfAtr::Limits))
    }
}

impl Default for IsoOptions {
    /// T=1, extended length, chaining.
    fn default() -> IsoOptions {
        IsoOptions { t0: false, extended: true, chaining: true, ef_atr: EfAtr::WithAtr }
    }
}

/// The ATR of a card with `options`: `3B 87 01 <historical> TCK` (T=1) or `3B 07
/// <historical>` (T=0). Historical bytes: category `80`, card service data `31 98` (selection
/// by full DF name, EF.ATR holds BER-TLV objects read by READ BINARY, card with MF), card
/// capabilities `73 B6 01 xx` (selection by full DF name, path, file id; short EF ids; record
/// numbers; 1-byte data units; xx: 0x80 chaining, 0x40 extended Lc/Le, 0x20 extended length
/// information in EF.ATR).
pub fn atr(options: IsoOptions) -> Vec<u8> {
    let historical = [0x80, 0x31, 0x98, 0x73, 0xB6, 0x01, options.atr_capabilities()];
    let k = historical.len() as u8;
    if options.t0 {
        // No TD1: T=0 only, and no TCK with T=0 alone.
        [&[0x3B, k][..], &historical].concat()
    } else {
        let mut atr = [&[0x3B, 0x80 | k, 0x01][..], &historical].concat();
        atr.push(atr[1..].iter().fold(0, |a, b| a ^ b));
        atr
    }
}

/// The content of EF.ATR/INFO for `options`.
fn ef_atr(options: IsoOptions) -> Vec<u8> {
    let mut out = apdu::tlv(0x47, &[0xB6, 0x01, options.capabilities(options.extended_length())]);
    if options.ef_atr == EfAtr::Malformed && options.extended_length() {
        out.extend([0x7F, 0x66, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0x02, 0x10, 0x00]);
    } else if options.extended_length() {
        // The largest command and response APDUs, header and status word included: vpcd
        // frames each with a 16-bit length.
        let [high, low] = options.apdu_limit().map_or(0xFFFF, |limit| limit as u16).to_be_bytes();
        out.extend(apdu::tlv(0x7F66, &[0x02, 0x02, high, low, 0x02, 0x02, high, low]));
    }
    out
}

/// Ways the card misbehaves on purpose, for the library's robustness tests; see each variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hostile {
    /// Behaves.
    #[default]
    None,
    /// Every command but GET RESPONSE answers `61 00`; every GET RESPONSE answers Ne (at most
    /// 256) bytes `EE` and `61 00` again, forever.
    EndlessGetResponse,
    /// Like `EndlessGetResponse` until [`LONG_CHAIN_BYTES`] were handed out; then `90 00`.
    LongChain,
    /// Every command answers `6C xx` with xx its short Le + 1 (mod 256; no Le counts as 00):
    /// never the Le just sent.
    EndlessWrongLe,
    /// SELECT returning an FCP or FCI: the true template, but its length byte says 16 more
    /// bytes than follow.
    FcpLengthLies,
    /// SELECT returning an FCP or FCI: `62 08 82 01 01 83 02 50 01 9F` (ends inside a
    /// two-byte tag).
    FcpTruncated,
    /// SELECT returning an FCP or FCI: `62 84 00 00 00 09 82 01 01 80 84 FF FF FF FF` (4-byte
    /// length forms, an inner length of 4 GiB).
    FcpLongLengthForm,
    /// Every command answers the single byte `90`. (No mode answers 0 bytes: vpcd takes an
    /// empty answer for a card that went away and the reader's transmit never returns.)
    OneByteAnswer,
    /// READ BINARY (B0, B1) answers its data, then `EE` bytes, 16 more than Ne in all (at most
    /// [`MAX_RESPONSE_DATA`]), with `90 00`.
    OverlongRead,
    /// A wrong VERIFY answers `63 Cx` with x = 4, 5, 6, ... (capped at 15) while the real
    /// counter stays untouched.
    LyingTriesLeft,
    /// Every command with an Le answers `90 00` without data.
    EmptySuccess,
    /// READ BINARY of [`EF_ATR`] answers its content with `62 82` (end of file before Ne
    /// bytes) instead of `90 00`, as a card that takes Le `00` for a count of 256 would; at
    /// once, even on T=0.
    EfAtrWarning,
    /// READ BINARY of [`EF_ATR`] answers its content with `65 81` (memory failure): content
    /// no reader should believe. At once, even on T=0.
    EfAtrFailure,
    /// Not a misbehaviour but a plainer card: SELECT by path (P1 08, 09) answers `6A 86` (P1
    /// not supported), so a path is selected one file identifier at a time, and the odd READ
    /// and UPDATE BINARY (B1, D7) answer `6D 00`, so offsets past 32 767 cannot be reached.
    Plain,
}

impl Hostile {
    /// Every mode, [`Hostile::None`] first.
    pub const ALL: [Hostile; 14] = [
        Hostile::None,
        Hostile::EndlessGetResponse,
        Hostile::LongChain,
        Hostile::EndlessWrongLe,
        Hostile::FcpLengthLies,
        Hostile::FcpTruncated,
        Hostile::FcpLongLengthForm,
        Hostile::OneByteAnswer,
        Hostile::OverlongRead,
        Hostile::LyingTriesLeft,
        Hostile::EmptySuccess,
        Hostile::EfAtrWarning,
        Hostile::EfAtrFailure,
        Hostile::Plain,
    ];

    /// The mode's name on the control channel: `none`, `endless-get-response`, ...
    pub fn name(self) -> &'static str {
        match self {
            Hostile::None => "none",
            Hostile::EndlessGetResponse => "endless-get-response",
            Hostile::LongChain => "long-chain",
            Hostile::EndlessWrongLe => "endless-wrong-le",
            Hostile::FcpLengthLies => "fcp-length-lies",
            Hostile::FcpTruncated => "fcp-truncated",
            Hostile::FcpLongLengthForm => "fcp-long-length-form",
            Hostile::OneByteAnswer => "one-byte-answer",
            Hostile::OverlongRead => "overlong-read",
            Hostile::LyingTriesLeft => "lying-tries-left",
            Hostile::EmptySuccess => "empty-success",
            Hostile::EfAtrWarning => "ef-atr-warning",
            Hostile::EfAtrFailure => "ef-atr-failure",
            Hostile::Plain => "plain",
        }
    }

    /// The mode [`name`](Self::name) gives `name`.
    pub fn from_name(name: &str) -> Option<Hostile> {
        Hostile::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// The control of one ISO card. Clones control the same card.
#[derive(Clone)]
pub struct IsoControl {
    card: Arc<Mutex<Card>>,
}

impl std::fmt::Debug for IsoControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsoControl")
            .field("hostile", &self.hostile())
            .field("commands_received", &self.commands_received())
            .finish()
    }
}

impl IsoControl {
    fn new(options: IsoOptions) -> IsoControl {
        IsoControl { card: Arc::new(Mutex::new(Card::new(options))) }
    }

    fn lock(&self) -> MutexGuard<'_, Card> {
        // A failed assertion in a test holding the lock must not break the card for others.
        self.card.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Switches the card's misbehaviour from the next APDU on (the mode's own counters start
    /// again).
    pub fn set_hostile(&self, mode: Hostile) {
        self.lock().set_hostile(mode);
    }

    pub fn hostile(&self) -> Hostile {
        self.lock().hostile()
    }

    /// Command APDUs the card has answered since it was made ([`reset`](Self::reset) does not
    /// clear this), through the reader or [`transmit`](Self::transmit).
    pub fn commands_received(&self) -> u64 {
        self.lock().commands_received()
    }

    /// Factory state: files and their contents, codes and counters, no hostile mode, and the
    /// volatile state a power-on clears.
    pub fn reset(&self) {
        self.lock().reset();
    }

    /// The card's answer to `apdu`, in this process (no reader, no pcscd): for unit tests of
    /// the card and of APDU logic.
    pub fn transmit(&self, apdu: &[u8]) -> Vec<u8> {
        self.lock().process(apdu)
    }

    /// The bytes of the transparent EF at `path` from the MF (e.g. `&[DF_ID, EF_BIG]`), as the
    /// card holds them now; `None` when there is no such transparent EF.
    pub fn transparent(&self, path: &[u16]) -> Option<Vec<u8>> {
        self.lock().transparent(path)
    }

    /// What a power-on or reset clears: verified codes, the current file (back to the MF),
    /// pending GET RESPONSE data, an open chain, the last challenge.
    fn power(&self) {
        self.lock().power();
    }
}

/// A virtual card running this applet with [`atr`]`(options)`, and its control.
///
/// The files and counters live as long as the card and its controls: they persist across
/// removal and insertion of the same `VirtualCard`. A power-on or reset from the reader
/// clears the volatile state only (verified codes, current file, pending data).
pub fn card(options: IsoOptions) -> (VirtualCard, IsoControl) {
    let control = IsoControl::new(options);
    let (commands, power) = (control.clone(), control.clone());
    let card = VirtualCard::with_power_hook(
        atr(options),
        move |apdu| Reply::Respond(commands.transmit(apdu)),
        move || power.power(),
    );
    (card, control)
}

#[cfg(test)]
mod tests;

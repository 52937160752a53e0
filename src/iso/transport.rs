//! The ISO/IEC 7816 transport: one command in, the whole answer out. It collects an answer
//! announced by `61xx` with GET RESPONSE (T=0 cards, and T=1 cards that do the same), resends
//! with the Le that `6Cxx` names, splits a long command into chained short ones when the card does
//! not take extended length, and uses extended length where the ATR says the card takes it.
//!
//! The loop is pure logic over [`Exchange`], so the unit tests and the fuzzer drive it with a
//! scripted card; the manager runs it over its PC/SC connection.

use std::fmt;

use pcsc::ffi;

use super::apdu::{Command, MAX_NE, MAX_SHORT_DATA, MAX_SHORT_NE};
use super::chv::wipe;
use super::ef_atr::{self, Extended};
use super::BROKEN_EXCHANGE;
use crate::hresult::*;
use crate::manager::Manager;
use crate::scard::{self, CardHandle, Result};

/// `scm_transmit_ex` flags.
pub(crate) const GET_RESPONSE: u32 = 1;
pub(crate) const FIX_LE: u32 = 2;
pub(crate) const CHAIN: u32 = 4;
pub(crate) const ALL: u32 = GET_RESPONSE | FIX_LE | CHAIN;

/// The most GET RESPONSE commands one command's answer may take: 64 KiB in pieces of 64 bytes.
/// A card announcing more (`61xx` forever, or pieces of a few bytes) gets [`BROKEN_EXCHANGE`].
pub(crate) const MAX_ROUNDS: usize = 1024;
/// The most resends after `6Cxx` for one command: one is what ISO/IEC 7816-3 needs, the second
/// tolerates a card that names a new Le for its GET RESPONSE too.
pub(crate) const MAX_LE_FIXES: usize = 2;
/// The most answer data one command collects, over all its GET RESPONSE rounds: what an extended
/// Le (`00 00`) can ask for.
pub(crate) const MAX_RESPONSE: usize = MAX_NE;

/// What the library knows of how a card takes commands, learnt once per connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Extended Lc and Le fields (card capabilities, third software function table byte, b7).
    pub extended_length: bool,
    /// The connection runs T=0, which carries no extended APDU (ISO/IEC 7816-3 12.2.5 needs
    /// ENVELOPE) and maps a case 4 command to a case 3 one answered with `61xx`.
    pub t0: bool,
    /// The card capabilities say (third byte, b6, 0x20) that EF.ATR holds the extended length
    /// information (`7F66`): the largest APDUs may be less than 65 535 bytes.
    pub limits_in_ef_atr: bool,
}

impl Capabilities {
    /// Reads the card capabilities from the ATR's historical bytes: compact-TLV tag 7 (`7x`),
    /// third byte, bit 7 (0x40) "extended Lc and Le fields" (ISO/IEC 7816-4 8.1.1.2.7), when the
    /// category indicator is `00` or `80`. A malformed ATR says nothing: short APDUs only.
    pub fn from_atr(atr: &[u8], t0: bool) -> Capabilities {
        let third = card_capabilities(atr).and_then(|bytes| bytes.get(2).copied()).unwrap_or(0);
        let extended_length = third & 0x40 != 0 && !t0;
        Capabilities { extended_length, t0, limits_in_ef_atr: extended_length && third & 0x20 != 0 }
    }

    /// The most data one command can ask for (its Ne).
    pub fn max_response_data(&self) -> usize {
        match self.extended_length {
            true => MAX_NE,
            false => MAX_SHORT_NE,
        }
    }
}

/// The historical bytes of an ATR (ISO/IEC 7816-3 8.2), or `None` when the ATR is too short for
/// what its format bytes announce.
fn historical_bytes(atr: &[u8]) -> Option<&[u8]> {
    let t0 = *atr.get(1)?;
    let count = usize::from(t0 & 0x0F);
    let mut position = 2;
    let mut indicator = t0;
    loop {
        let present = (indicator >> 4).count_ones() as usize;
        // TDi is the last interface byte of its group, when bit 8 of the indicator says so.
        let next = (indicator & 0x80 != 0).then(|| position + present - 1);
        position += present;
        match next {
            Some(td) => indicator = *atr.get(td)?,
            None => break,
        }
    }
    atr.get(position..position.checked_add(count)?)
}

/// The card capabilities data object (compact-TLV tag 7) of the historical bytes.
fn card_capabilities(atr: &[u8]) -> Option<&[u8]> {
    let (&category, mut objects) = historical_bytes(atr)?.split_first()?;
    match category {
        // `00`: the last three bytes are a status indicator, not compact-TLV.
        0x00 => objects = &objects[..objects.len().checked_sub(3)?],
        0x80 => {}
        _ => return None,
    }
    while let Some((&header, rest)) = objects.split_first() {
        let length = usize::from(header & 0x0F);
        let value = rest.get(..length)?;
        if header >> 4 == 7 {
            return Some(value);
        }
        objects = &rest[length..];
    }
    None
}

/// One exchange with a card: send `command`, write the answer into `answer`, return its length.
pub trait Exchange {
    fn exchange(&mut self, command: &[u8], answer: &mut [u8]) -> Result<usize>;
}

/// A PC/SC connection.
struct Connection {
    handle: CardHandle,
    protocol: ffi::DWORD,
}

impl Exchange for Connection {
    fn exchange(&mut self, command: &[u8], answer: &mut [u8]) -> Result<usize> {
        // SAFETY: both slices are valid for their lengths and do not overlap.
        unsafe {
            self.handle.transmit(
                self.protocol,
                command.as_ptr(),
                command.len(),
                answer.as_mut_ptr(),
                answer.len(),
            )
        }
    }
}

/// The class byte of a GET RESPONSE following a command of class `cla`: the same logical
/// channel, no chaining, no secure messaging (ISO/IEC 7816-4 5.4.1); `00` after a proprietary
/// class, as cards with proprietary commands expect.
fn get_response_class(cla: u8) -> u8 {
    match cla {
        0x00..=0x3F => cla & 0x03,
        0x40..=0x7F => 0x40 | (cla & 0x0F),
        _ => 0x00,
    }
}

/// How a command is sent: in extended form or short (chained when its data is long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub extended: bool,
    /// T=0: a case 4 command goes without its Le (ISO/IEC 7816-3 12.2.4), when GET RESPONSE
    /// is to collect the answer.
    pub t0: bool,
}

impl Plan {
    /// The form the library picks: extended only when the command needs it and the card takes it.
    pub fn automatic(command: &Command, capabilities: Capabilities) -> Plan {
        Plan { extended: capabilities.extended_length && !command.fits_short(), t0: capabilities.t0 }
    }
}

/// Sends `command` as `plan` says and collects the answer: its data is appended to `response`,
/// the final status word returned. `flags` are the `scm_transmit_ex` ones; `encoded` and
/// `answer` are scratch space (`answer` at least `scard::MAX_APDU` bytes for any answer).
pub fn run(
    card: &mut impl Exchange,
    command: &Command,
    plan: Plan,
    flags: u32,
    encoded: &mut Vec<u8>,
    answer: &mut [u8],
    response: &mut Vec<u8>,
) -> Result<u16> {
    let mut last = *command;
    if !plan.extended {
        if command.data.len() > MAX_SHORT_DATA {
            if flags & CHAIN == 0 {
                return Err(SCM_E_INVALIDARG);
            }
            let mut pieces = command.chained().peekable();
            while let Some(piece) = pieces.next() {
                if pieces.peek().is_none() {
                    last = piece;
                    break;
                }
                let (data, sw) = exchange(card, &piece, false, encoded, answer)?;
                if sw == super::sw::SW_OK && data.is_empty() {
                    continue;
                }
                // The rest of the data never reached the card: only a refusal may end the
                // command, since anything else would read as the whole command's success.
                let refusal = data.is_empty() && matches!(sw >> 8, 0x64..=0x6F);
                return match refusal {
                    true => Ok(sw),
                    false => Err(BROKEN_EXCHANGE),
                };
            }
        }
        // A short command asks for at most 256 bytes; GET RESPONSE collects the rest.
        last.ne = last.ne.min(MAX_SHORT_NE);
        if plan.t0 && flags & GET_RESPONSE != 0 && !last.data.is_empty() {
            last.ne = 0;
        }
    }
    let (mut rounds, mut fixes) = (0, 0);
    let mut extended = plan.extended;
    loop {
        let (data, sw) = exchange(card, &last, extended, encoded, answer)?;
        let [sw1, sw2] = sw.to_be_bytes();
        let announced = match sw2 {
            0 => MAX_SHORT_NE,
            n => usize::from(n),
        };
        match sw1 {
            0x6C if flags & FIX_LE != 0 && data.is_empty() => {
                fixes += 1;
                if fixes > MAX_LE_FIXES {
                    return Err(BROKEN_EXCHANGE);
                }
                last.ne = announced;
            }
            0x61 if flags & GET_RESPONSE != 0 => {
                append(response, data)?;
                rounds += 1;
                if rounds > MAX_ROUNDS {
                    return Err(BROKEN_EXCHANGE);
                }
                last = Command { ne: announced, ..Command::new(get_response_class(last.cla), 0xC0, 0, 0) };
                extended = false;
            }
            _ => {
                append(response, data)?;
                return Ok(sw);
            }
        }
    }
}

/// Adds answer data to the response, within [`MAX_RESPONSE`].
fn append(response: &mut Vec<u8>, data: &[u8]) -> Result<()> {
    if response.len() + data.len() > MAX_RESPONSE {
        return Err(BROKEN_EXCHANGE);
    }
    response.extend_from_slice(data);
    Ok(())
}

/// One command and its answer: the data (never more than the command's Ne, when it had one)
/// and the status word.
fn exchange<'a>(
    card: &mut impl Exchange,
    command: &Command,
    extended: bool,
    encoded: &mut Vec<u8>,
    answer: &'a mut [u8],
) -> Result<(&'a [u8], u16)> {
    encoded.clear();
    command.encode(extended, encoded)?;
    let len = card.exchange(encoded, answer)?.min(answer.len());
    let (data, sw) = answer[..len].split_last_chunk::<2>().ok_or(BROKEN_EXCHANGE)?;
    if command.ne > 0 && data.len() > command.ne {
        return Err(BROKEN_EXCHANGE);
    }
    Ok((data, u16::from_be_bytes(*sw)))
}

/// The manager's ISO state: the card's capabilities, learnt at the first ISO command after each
/// attachment or reconnection, and buffers kept from one command to the next so that the common
/// path allocates nothing.
#[derive(Default)]
pub struct IsoSession {
    capabilities: Option<Capabilities>,
    /// What EF.ATR announced, once a file access object read it on this connection.
    ef_atr: Option<Option<Extended>>,
    encoded: Vec<u8>,
    answer: Vec<u8>,
    response: Vec<u8>,
}

impl fmt::Debug for IsoSession {
    // The buffers may hold what a card or a caller sent: never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IsoSession")
            .field("capabilities", &self.capabilities)
            .field("ef_atr", &self.ef_atr)
            .finish_non_exhaustive()
    }
}

impl IsoSession {
    /// The connection changed (reconnected, detached): its card may be another.
    pub fn forget_card(&mut self) {
        self.capabilities = None;
        self.ef_atr = None;
    }

    /// Gives the buffers their full size, once: any answer fits, and any command's encoding, so
    /// that the encoding buffer never grows (growing frees the old allocation as it is).
    fn ready(&mut self) {
        if self.answer.len() < scard::MAX_APDU {
            self.answer.resize(scard::MAX_APDU, 0);
        }
        if self.encoded.capacity() < scard::MAX_APDU {
            self.encoded.clear();
            self.encoded.reserve_exact(scard::MAX_APDU);
        }
    }

    /// [`Manager::iso_transmit`] over `card`, with the command decoded.
    fn transmit(
        &mut self,
        card: &mut impl Exchange,
        capabilities: Capabilities,
        flags: u32,
        command: &Command,
        was_extended: bool,
    ) -> Result<Vec<u8>> {
        let plan = match flags & CHAIN {
            0 => Plan { extended: was_extended, t0: capabilities.t0 },
            _ => Plan::automatic(command, capabilities),
        };
        let mut response = std::mem::take(&mut self.response);
        response.clear();
        // The caller's command may carry a code (a VERIFY of its own): every encoding of it (its
        // pieces, resends and GET RESPONSEs are no longer) is wiped when the exchange ends,
        // however it ends, unwinding included.
        let encoded = Wiped { used: longest_encoding(command.data.len()), buffer: &mut self.encoded };
        match run(card, command, plan, flags, encoded.buffer, &mut self.answer, &mut response) {
            Ok(sw) => {
                response.extend_from_slice(&sw.to_be_bytes());
                Ok(response)
            }
            Err(code) => {
                self.response = response;
                Err(code)
            }
        }
    }
}

/// A buffer overwritten when let go, over the first `used` bytes of its allocation: its length
/// at the end says only what was written last.
struct Wiped<'a> {
    buffer: &'a mut Vec<u8>,
    used: usize,
}

impl Drop for Wiped<'_> {
    fn drop(&mut self) {
        let used = self.used.min(self.buffer.capacity());
        // Within the capacity: no new allocation.
        self.buffer.resize(used.max(self.buffer.len()), 0);
        wipe(self.buffer);
    }
}

/// The longest encoding of a command with `data` and of each piece of it: header, extended Lc
/// and Le.
pub(crate) const fn longest_encoding(data: usize) -> usize {
    data + 4 + 3 + 2
}

/// The manager's connection with its session, ready for a command.
struct Link<'a> {
    card: Connection,
    session: &'a mut IsoSession,
}

impl Manager {
    fn iso_link(&mut self) -> Result<(Link<'_>, Capabilities)> {
        let (handle, protocol, session) = self.iso_parts()?;
        let capabilities = match session.capabilities {
            Some(capabilities) => capabilities,
            None => {
                let (atr, len) = handle.atr()?;
                let capabilities = Capabilities::from_atr(&atr[..len], protocol == ffi::SCARD_PROTOCOL_T0);
                *session.capabilities.insert(capabilities)
            }
        };
        session.ready();
        Ok((Link { card: Connection { handle, protocol }, session }, capabilities))
    }

    /// What the connected card takes (learnt from its ATR once per connection).
    pub fn iso_capabilities(&mut self) -> Result<Capabilities> {
        Ok(self.iso_link()?.1)
    }

    /// Sends `command` with every ISO help (GET RESPONSE, Le correction, chaining, extended
    /// length where the card takes it), appends the answer's data to `response` and returns the
    /// final status word. A command asking for more than the card can send in one answer (Ne
    /// over 256 without extended length) asks for 256.
    pub fn iso_command(&mut self, command: &Command, response: &mut Vec<u8>) -> Result<u16> {
        let capabilities = self.iso_capabilities()?;
        self.iso_command_as(command, capabilities, response)
    }

    /// [`Manager::iso_command`] for a card that takes what `capabilities` say (learnt beyond the
    /// ATR: [`Manager::iso_ef_atr`]).
    pub fn iso_command_as(
        &mut self,
        command: &Command,
        capabilities: Capabilities,
        response: &mut Vec<u8>,
    ) -> Result<u16> {
        let Link { mut card, session } = self.iso_link()?.0;
        let plan = Plan::automatic(command, capabilities);
        run(&mut card, command, plan, ALL, &mut session.encoded, &mut session.answer, response)
    }

    /// Extended length as EF.ATR announces it, read once per connection (SELECT MF, SELECT 2F01,
    /// READ BINARY of up to 256 bytes, all short) and only on a T=1 card whose ATR announces
    /// none, or announces it with its limits in EF.ATR: `None` when the file is absent,
    /// unreadable or malformed. The reads change the card's current file, so only callers that
    /// select what they work on afterwards may ask (file access objects), never `scm_transmit_ex`.
    pub fn iso_ef_atr(&mut self) -> Result<Option<Extended>> {
        let capabilities = self.iso_capabilities()?;
        if capabilities.t0 || (capabilities.extended_length && !capabilities.limits_in_ef_atr) {
            return Ok(None);
        }
        if let Some(known) = self.iso.ef_atr {
            return Ok(known);
        }
        let mut content = Vec::new();
        let announced = match self.read_ef_atr(&mut content) {
            Ok(true) => ef_atr::parse(&content, capabilities.limits_in_ef_atr),
            Ok(false) | Err(BROKEN_EXCHANGE) => None,
            // The connection failed, not the card's answer: asked again next time.
            Err(code) => return Err(code),
        };
        self.iso.ef_atr = Some(announced);
        Ok(announced)
    }

    /// Reads EF.ATR's first 256 bytes into `content`; `false` when a step is refused.
    fn read_ef_atr(&mut self, content: &mut Vec<u8>) -> Result<bool> {
        for id in [super::file::MF, ef_atr::FILE_ID] {
            let select = Command { data: &id.to_be_bytes(), ..Command::new(0x00, 0xA4, 0x00, 0x0C) };
            if !matches!(self.iso_command(&select, content)?, 0x9000 | 0x6200..=0x62FF) {
                return Ok(false);
            }
        }
        content.clear();
        let read = Command { ne: MAX_SHORT_NE, ..Command::new(0x00, 0xB0, 0x00, 0x00) };
        let sw = self.iso_command(&read, content)?;
        Ok(sw == 0x9000 || (sw >> 8 == 0x62 && !content.is_empty()))
    }

    /// [`Manager::iso_command`] encoding the command in `encoded`, a buffer of the caller's,
    /// so that a command carrying a secret leaves no copy in the session's buffers.
    pub fn iso_command_in(
        &mut self,
        command: &Command,
        encoded: &mut Vec<u8>,
        response: &mut Vec<u8>,
    ) -> Result<u16> {
        let (link, capabilities) = self.iso_link()?;
        let Link { mut card, session } = link;
        let plan = Plan::automatic(command, capabilities);
        run(&mut card, command, plan, ALL, encoded, &mut session.answer, response)
    }

    /// `scm_transmit_ex` with flags: the caller's raw command with the ISO help the flags ask
    /// for; returns the whole answer, data and status word, in the session's buffer (give it
    /// back with [`Manager::iso_reuse`]). With `CHAIN` the library picks the form (as
    /// [`Manager::iso_command`]); without it the command keeps the form it came in.
    pub fn iso_transmit(&mut self, flags: u32, raw: &[u8]) -> Result<Vec<u8>> {
        let (command, was_extended) = Command::parse(raw)?;
        let (link, capabilities) = self.iso_link()?;
        let Link { mut card, session } = link;
        session.transmit(&mut card, capabilities, flags, &command, was_extended)
    }

    /// Gives the buffer [`Manager::iso_transmit`] returned back, for the next call.
    pub fn iso_reuse(&mut self, response: Vec<u8>) {
        self.iso.response = response;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso::apdu::{CLA_CHAINING, MAX_SHORT_DATA};

    /// A card played by a closure over each command, counting them.
    struct Scripted<F: FnMut(&[u8]) -> Vec<u8>> {
        answer: F,
        commands: Vec<Vec<u8>>,
    }

    impl<F: FnMut(&[u8]) -> Vec<u8>> Exchange for Scripted<F> {
        fn exchange(&mut self, command: &[u8], answer: &mut [u8]) -> Result<usize> {
            self.commands.push(command.to_vec());
            let reply = (self.answer)(command);
            let len = reply.len().min(answer.len());
            answer[..len].copy_from_slice(&reply[..len]);
            Ok(len)
        }
    }

    fn scripted<F: FnMut(&[u8]) -> Vec<u8>>(answer: F) -> Scripted<F> {
        Scripted { answer, commands: Vec::new() }
    }

    fn send(card: &mut impl Exchange, command: &Command, plan: Plan, flags: u32) -> Result<(Vec<u8>, u16)> {
        let mut answer = vec![0; scard::MAX_APDU];
        let mut response = Vec::new();
        let sw = run(card, command, plan, flags, &mut Vec::new(), &mut answer, &mut response)?;
        Ok((response, sw))
    }

    const SHORT: Plan = Plan { extended: false, t0: false };
    const T0: Plan = Plan { extended: false, t0: true };

    #[test]
    fn get_response_collects_every_piece() {
        let left = std::cell::Cell::new(600usize);
        let mut card = scripted(|command| {
            let piece = left.get().min(256);
            left.set(left.get() - piece);
            let mut reply = vec![0xAB; piece];
            match left.get() {
                0 => reply.extend_from_slice(&[0x90, 0x00]),
                more => reply.extend_from_slice(&[0x61, more.min(256) as u8]),
            }
            assert!(command.len() == 5, "{command:02X?}");
            reply
        });
        let read = Command { ne: 256, ..Command::new(0x00, 0xB0, 0, 0) };
        let (data, sw) = send(&mut card, &read, SHORT, ALL).unwrap();
        assert_eq!((data.len(), sw), (600, 0x9000));
        assert_eq!(card.commands.len(), 3);
        assert_eq!(card.commands[1], [0x00, 0xC0, 0x00, 0x00, 0x00]);
        assert_eq!(card.commands[2], [0x00, 0xC0, 0x00, 0x00, 88]);
        // Without the flag, the 61xx comes back as it is.
        left.set(600);
        let (data, sw) = send(&mut card, &read, SHORT, FIX_LE).unwrap();
        assert_eq!((data.len(), sw), (256, 0x6100));
    }

    #[test]
    fn wrong_length_is_resent_with_the_named_le() {
        let mut card = scripted(|command| match command[4] {
            0x10 => [vec![7; 16], vec![0x90, 0x00]].concat(),
            _ => vec![0x6C, 0x10],
        });
        let read = Command { ne: 256, ..Command::new(0x00, 0xB0, 0, 0) };
        let (data, sw) = send(&mut card, &read, SHORT, ALL).unwrap();
        assert_eq!((data, sw), (vec![7; 16], 0x9000));
        assert_eq!(card.commands, [vec![0x00, 0xB0, 0, 0, 0], vec![0x00, 0xB0, 0, 0, 0x10]]);
    }

    #[test]
    fn t0_sends_case_4_without_le_and_collects_with_get_response() {
        let mut card = scripted(|command| match command[1] {
            0x88 => vec![0x61, 0x08],
            _ => [vec![1; 8], vec![0x90, 0x00]].concat(),
        });
        let auth = Command { data: &[1, 2, 3], ne: 256, ..Command::new(0x00, 0x88, 0, 0) };
        let (data, sw) = send(&mut card, &auth, T0, ALL).unwrap();
        assert_eq!((data, sw), (vec![1; 8], 0x9000));
        assert_eq!(card.commands[0], [0x00, 0x88, 0, 0, 3, 1, 2, 3]);
        assert_eq!(card.commands[1], [0x00, 0xC0, 0, 0, 8]);
        // Without GET_RESPONSE the caller collects the answer: the command keeps its Le, and
        // the 61xx comes back as it is.
        card.commands.clear();
        assert_eq!(send(&mut card, &auth, T0, FIX_LE).unwrap(), (vec![], 0x6108));
        assert_eq!(card.commands, [[0x00, 0x88, 0, 0, 3, 1, 2, 3, 0]]);
    }

    #[test]
    fn long_commands_are_chained_or_extended() {
        let data = vec![0x42; 600];
        let update = Command { data: &data, ..Command::new(0x00, 0xD6, 0, 0) };
        let mut card = scripted(|_| vec![0x90, 0x00]);
        let (_, sw) = send(&mut card, &update, SHORT, ALL).unwrap();
        assert_eq!(sw, 0x9000);
        let sizes: Vec<_> = card.commands.iter().map(|c| (c[0], c.len())).collect();
        assert_eq!(sizes, [(0x10, 5 + 255), (0x10, 5 + 255), (0x00, 5 + 90)]);
        let mut card = scripted(|_| vec![0x90, 0x00]);
        send(&mut card, &update, Plan { extended: true, t0: false }, ALL).unwrap();
        assert_eq!(card.commands.len(), 1);
        assert_eq!(card.commands[0].len(), 7 + 600);
        // Without CHAIN a long short-form command cannot be sent.
        let mut card = scripted(|_| vec![0x90, 0x00]);
        assert_eq!(send(&mut card, &update, SHORT, GET_RESPONSE).unwrap_err(), SCM_E_INVALIDARG);
        assert!(card.commands.is_empty());
        // 255 bytes fit one short command: sent as it is, CHAIN or not.
        let mut card = scripted(|_| vec![0x90, 0x00]);
        let full = Command { data: &data[..MAX_SHORT_DATA], ..update };
        assert_eq!(send(&mut card, &full, SHORT, GET_RESPONSE).unwrap().1, 0x9000);
        assert_eq!(card.commands.iter().map(|c| (c[0], c.len())).collect::<Vec<_>>(), [(0x00, 5 + 255)]);
        // A refused piece ends the command with its answer.
        let mut card = scripted(|_| vec![0x68, 0x84]);
        assert_eq!(send(&mut card, &update, SHORT, ALL).unwrap().1, 0x6884);
        assert_eq!(card.commands.len(), 1);
        assert!(data.len() > 2 * MAX_SHORT_DATA);
    }

    #[test]
    fn a_piece_answered_as_if_the_command_were_whole_breaks_the_exchange() {
        // Only the first 255 of 600 bytes reached the card: an answer the caller would take for
        // the whole command's success (data, 61xx, 9000 with data, a 62xx warning with data) must
        // not end it as one.
        let data = vec![0x42; 600];
        let update = Command { data: &data, ..Command::new(0x00, 0xD6, 0, 0) };
        for answer in [vec![0x61, 0x10], vec![1, 2, 0x90, 0x00], vec![1, 0x62, 0x81], vec![0x91, 0x00]] {
            let mut card = scripted(|_| answer.clone());
            assert_eq!(send(&mut card, &update, SHORT, ALL).unwrap_err(), BROKEN_EXCHANGE, "{answer:02X?}");
            assert_eq!(card.commands.len(), 1);
        }
        // A refusal without data still ends the command with its status word.
        for refusal in [0x6882, 0x6A80, 0x6982] {
            let mut card = scripted(|_| u16::to_be_bytes(refusal).to_vec());
            assert_eq!(send(&mut card, &update, SHORT, ALL).unwrap(), (vec![], refusal));
        }
    }

    #[test]
    fn hostile_answers_get_their_codes() {
        let read = Command { ne: 256, ..Command::new(0x00, 0xB0, 0, 0) };
        // Endless 61xx with full pieces: stopped at 64 KiB.
        let mut card = scripted(|_| [vec![0; 256], vec![0x61, 0x00]].concat());
        assert_eq!(send(&mut card, &read, SHORT, ALL).unwrap_err(), BROKEN_EXCHANGE);
        assert!(card.commands.len() <= MAX_RESPONSE / 256 + 1);
        // Endless 61xx with no data: stopped after MAX_ROUNDS.
        let mut card = scripted(|_| vec![0x61, 0x01]);
        assert_eq!(send(&mut card, &read, SHORT, ALL).unwrap_err(), BROKEN_EXCHANGE);
        assert_eq!(card.commands.len(), MAX_ROUNDS + 1);
        // Endless 6Cxx.
        let mut card = scripted(|command| vec![0x6C, command[4].wrapping_add(1)]);
        assert_eq!(send(&mut card, &read, SHORT, ALL).unwrap_err(), BROKEN_EXCHANGE);
        assert_eq!(card.commands.len(), MAX_LE_FIXES + 1);
        // Shorter than a status word.
        for short in [vec![], vec![0x90]] {
            let mut card = scripted(|_| short.clone());
            assert_eq!(send(&mut card, &read, SHORT, ALL).unwrap_err(), BROKEN_EXCHANGE);
        }
        // More than asked.
        let small = Command { ne: 4, ..read };
        let mut card = scripted(|_| vec![0; 7]);
        assert_eq!(send(&mut card, &small, SHORT, ALL).unwrap_err(), BROKEN_EXCHANGE);
        let mut card = scripted(|_| vec![0; 6]);
        assert_eq!(send(&mut card, &small, SHORT, ALL).unwrap(), (vec![0; 4], 0));
    }

    #[test]
    fn capabilities_come_from_the_historical_bytes() {
        // TS T0(K=5, TD1) TD1(T=1) | 80 73 00 00 C0 | no TCK check here.
        let atr = [0x3B, 0x85, 0x01, 0x80, 0x73, 0x00, 0x00, 0xC0, 0x00];
        let t1 = Capabilities { extended_length: true, t0: false, limits_in_ef_atr: false };
        assert_eq!(Capabilities::from_atr(&atr, false), t1);
        assert_eq!(Capabilities::from_atr(&atr, true), Capabilities { t0: true, ..Capabilities::default() });
        let mut with_limits = atr;
        with_limits[7] = 0xE0;
        assert_eq!(
            Capabilities::from_atr(&with_limits, false),
            Capabilities { limits_in_ef_atr: true, ..t1 }
        );
        assert_eq!(
            Capabilities::from_atr(&with_limits, true),
            Capabilities { t0: true, ..Capabilities::default() }
        );
        let no_extended = [0x3B, 0x85, 0x01, 0x80, 0x73, 0x00, 0x00, 0x80, 0x00];
        assert!(!Capabilities::from_atr(&no_extended, false).extended_length);
        // Category 00: the last three historical bytes are a status indicator.
        let status = [0x3B, 0x88, 0x01, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x90, 0x00, 0x00];
        assert!(Capabilities::from_atr(&status, false).extended_length);
        for malformed in [&[][..], &[0x3B], &[0x3B, 0x8F, 0x01, 0x80], &[0x3B, 0x85, 0x01, 0x80, 0x7F, 0x00]]
        {
            assert!(!Capabilities::from_atr(malformed, false).extended_length);
        }
        // The lab's default card: T=1, no historical bytes.
        assert!(!Capabilities::from_atr(&[0x3B, 0x80, 0x01, 0x81], false).extended_length);
    }

    #[test]
    fn a_raw_command_leaves_no_copy_in_the_session() {
        // A caller's VERIFY through scm_transmit_ex: its code must not stay in the manager's
        // buffers (kept for the manager's lifetime, freed unwiped), past their length either (a
        // GET RESPONSE or a last chained piece is shorter than the command), nor in an
        // allocation a growing buffer left behind.
        let code = *b"PIN-4711";
        let data = [code; 300 / 8 + 1].concat();
        let verify = [&[0x00, 0x20, 0x00, 0x81, 0x00, 0x01, 0x2C][..], &data[..300]].concat();
        for extended_length in [true, false] {
            let mut session = IsoSession::default();
            session.ready();
            // Every byte of the allocation initialized, so that all of it can be read below.
            let capacity = session.encoded.capacity();
            session.encoded.resize(capacity, 0);
            session.encoded.clear();
            let first = session.encoded.as_ptr();
            let mut card = scripted(|command| match command[1] {
                0x20 if command[0] & CLA_CHAINING == 0 => vec![0x61, 0x04],
                0xC0 => vec![1, 2, 3, 4, 0x90, 0x00],
                _ => vec![0x90, 0x00],
            });
            let capabilities = Capabilities { extended_length, ..Capabilities::default() };
            for raw in [&[0x00, 0x84, 0x00, 0x00, 0x08][..], &verify] {
                let (command, was_extended) = Command::parse(raw).unwrap();
                let response =
                    session.transmit(&mut card, capabilities, ALL, &command, was_extended).unwrap();
                session.response = response;
            }
            assert_eq!(card.commands.len(), 1 + 2 + usize::from(!extended_length), "a GET RESPONSE each");
            assert_eq!(session.encoded.as_ptr(), first, "the encoding buffer never moves");
            assert!(session.encoded.capacity() >= scard::MAX_APDU);
            // SAFETY: the whole capacity was initialized above, in this same allocation.
            unsafe { session.encoded.set_len(capacity) };
            assert!(!session.encoded.windows(code.len()).any(|bytes| bytes == code), "the code is wiped");
            assert!(session.encoded.iter().all(|&byte| byte == 0), "every byte of every encoding wiped");
        }
    }

    /// A manager's `Debug` text (in a log, a panic message) shows what was learnt of the card
    /// and none of the buffers, which may hold a PIN sent or a card's answer.
    #[test]
    fn the_debug_text_shows_the_capabilities_and_no_buffer() {
        let secret = b"PIN 1234".to_vec();
        let session = IsoSession {
            capabilities: Some(Capabilities::default()),
            encoded: secret.clone(),
            answer: secret.clone(),
            response: secret.clone(),
            ..IsoSession::default()
        };
        let text = format!("{session:?}");
        let capabilities = format!("{:?}", Capabilities::default());
        assert!(text.starts_with("IsoSession {"), "{text}");
        assert!(text.contains(&format!("capabilities: Some({capabilities})")), "{text}");
        assert!(text.contains("ef_atr: None"), "{text}");
        let bytes = format!("{secret:?}");
        assert!(!text.contains(bytes.trim_matches(['[', ']'])), "a buffer shown: {text}");
        assert!(["encoded", "answer", "response"].iter().all(|field| !text.contains(field)), "{text}");
    }

    #[test]
    fn get_response_keeps_the_logical_channel() {
        assert_eq!(get_response_class(0x00), 0x00);
        assert_eq!(get_response_class(0x1F), 0x03);
        assert_eq!(get_response_class(0x0C), 0x00);
        assert_eq!(get_response_class(0x53), 0x43);
        assert_eq!(get_response_class(0x80), 0x00);
    }
}

//! File access (COM `ISCardFileAccess`) over the commands of ISO 7816-4 and 7816-9: SELECT,
//! READ/UPDATE BINARY, READ/UPDATE/APPEND RECORD, CREATE FILE, DELETE FILE, DEACTIVATE and
//! ACTIVATE FILE.
//!
//! The object keeps its own current directory and its open files as locations the card can be
//! brought back to from nothing (the MF or a DF name), and every call selects what it works on
//! afresh, holding its manager for the whole call. So nothing relies on the card's selection
//! state, which other objects, `scm_transmit` and a card reset all change: two objects on one
//! manager do not disturb each other, and an object goes on working after `scm_reconnect`.

mod binary;
mod positions;
mod reference;

pub(crate) use positions::MAX_OPEN_FILES;
pub use reference::Reference;
pub(crate) use reference::MF;

use super::apdu::{Command, MAX_SHORT_DATA, MAX_SHORT_NE};
use super::tlv::{self, Fcp};
use super::transport::Capabilities;
use super::{sw, BROKEN_EXCHANGE, MALFORMED_DATA};
use crate::hresult::*;
use crate::manager::Manager;
use crate::scard::Result;
use positions::OpenFiles;
use reference::Location;
use std::mem::MaybeUninit;

/// Where an open file is, and how each call reaches it.
#[derive(Debug, Clone)]
enum Place {
    /// Selected by a SELECT at the start of each call.
    Selected(Location),
    /// Named by its short EF identifier in the first command of each call, once its directory
    /// is selected.
    Short { directory: Location, id: u8 },
}

/// What the file holds, as its FCP (or, for a short EF identifier, the card's answer) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Structure {
    /// Bytes; the size when the FCP gives one (tag 80).
    Transparent { size: Option<u64> },
    /// Records, 1 to 254; the count when the FCP gives one (file descriptor, tag 82).
    Records { count: Option<u64> },
}

impl Structure {
    /// The end a seek from the end counts from: bytes, or records.
    fn end(self) -> Option<u64> {
        match self {
            Structure::Transparent { size } => size,
            Structure::Records { count } => count,
        }
    }
}

#[derive(Debug)]
struct OpenFile {
    place: Place,
    structure: Structure,
    /// A byte offset, or for a record file the index of the next record (0 for record 1).
    position: u64,
}

/// The last record number READ/UPDATE RECORD can name in P1 (FF is reserved).
const LAST_RECORD: u64 = 254;

/// A file access object: the manager it works through, by token, its current directory and
/// its open files.
#[derive(Debug)]
pub struct FileAccess {
    pub manager: usize,
    directory: Location,
    files: OpenFiles<OpenFile>,
}

/// The longest APDU, and the longest answer with its status word, that extended-length reads
/// and writes build: some readers' drivers (vpcd among them) frame each with a 16-bit length,
/// so an APDU of 65536 bytes of data cannot cross them; one more command per 64 KiB costs
/// little.
const MAX_FRAME: usize = 0xFFFF;

/// The largest data field of a command and of an answer this card takes in one APDU.
#[derive(Debug, Clone, Copy)]
struct Limits {
    command: usize,
    response: usize,
}

/// One call's dealings with the card, its manager held for the whole call: no other call on the
/// manager comes between a SELECT and the commands that rely on it.
struct Session<'a> {
    manager: &'a mut Manager,
    limits: Limits,
    /// What the card takes: its ATR's word, or EF.ATR's when that announces extended length
    /// (with the limits of `limits`);
    /// on T=0 a command with data carries no Le.
    capabilities: Capabilities,
    /// The data of the last answer, without its status word.
    answer: Vec<u8>,
    /// A command's data field, built here.
    data: Vec<u8>,
}

/// The parts of an FCP the file functions need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Description {
    /// What the file descriptor (`82`) says: a DF, an EF, or nothing when the card left it out.
    directory: Option<bool>,
    structure: Structure,
}

impl<'a> Session<'a> {
    fn new(manager: &'a mut Manager) -> Result<Session<'a>> {
        let mut capabilities = manager.iso_capabilities()?;
        // A whole APDU, and a whole answer with its status word, within one frame and within
        // what EF.ATR says the card takes: header and extended Lc (or Le) around the data.
        let frame = |apdu: usize| apdu.min(MAX_FRAME);
        let limits = match (capabilities.extended_length, manager.iso_ef_atr()?) {
            (_, Some(announced)) => {
                capabilities.extended_length = true;
                Limits {
                    command: frame(announced.command_apdu) - 7,
                    response: frame(announced.response_apdu) - 2,
                }
            }
            (true, None) => Limits { command: MAX_FRAME - 7, response: MAX_FRAME - 2 },
            (false, None) => Limits { command: MAX_SHORT_DATA, response: MAX_SHORT_NE },
        };
        Ok(Session { manager, limits, capabilities, answer: Vec::new(), data: Vec::new() })
    }

    /// Sends `self.data` (when `with_data`) under the header, through the ISO transport (GET
    /// RESPONSE, Le correction, extended length where the card takes it), and returns the
    /// status word; the answer's data is in `self.answer`.
    fn send(&mut self, [cla, ins, p1, p2]: [u8; 4], with_data: bool, ne: usize) -> Result<u16> {
        let data = if with_data { &self.data[..] } else { &[][..] };
        self.answer.clear();
        self.manager.iso_command_as(
            &Command { cla, ins, p1, p2, data, ne },
            self.capabilities,
            &mut self.answer,
        )
    }

    /// What a status word means for the answer in `self.answer`.
    fn status(&self, sw: u16) -> Result<()> {
        sw::check(sw, self.answer.len())
    }

    /// `send`, with a status word other than success turned into its code.
    fn run(&mut self, header: [u8; 4], with_data: bool, ne: usize) -> Result<()> {
        let sw = self.send(header, with_data, ne)?;
        self.status(sw)
    }

    /// `send` for a SELECT: a warning is success, with the FCP asked for or not (6283: the
    /// file is deactivated, and selected all the same).
    fn run_select(&mut self, header: [u8; 4], ne: usize) -> Result<()> {
        match self.send(header, true, ne)? {
            0x6200..=0x62FF => Ok(()),
            sw => self.status(sw),
        }
    }

    /// Selects a location from nothing; with `fcp`, asks for its FCP, which is then in
    /// `self.answer`. SELECT by path from the MF (P1 08) or from a DF named first (P1 09); a
    /// card that does not take paths (`SCM_E_NOTIMPL`, or 6A86 for P1) is walked down one
    /// identifier at a time (P1 00).
    fn select(&mut self, location: &Location, fcp: bool) -> Result<()> {
        let (p2, le) = if fcp { (0x04, 256) } else { (0x0C, 0) };
        let below = location.below();
        let (p1, start) = match location {
            Location::FromMf(_) if below.is_empty() => return self.select_id(reference::MF, p2, le),
            Location::FromMf(_) => (0x08, None),
            Location::FromName { name, .. } if below.is_empty() => return self.select_name(name, p2, le),
            Location::FromName { name, .. } => (0x09, Some(name)),
        };
        if let Some(name) = start {
            self.select_name(name, 0x0C, 0)?;
        }
        self.data.clear();
        self.data.extend(below.iter().flat_map(|id| id.to_be_bytes()));
        match self.send([0x00, 0xA4, p1, p2], true, le)? {
            0x6A81 | 0x6A86 => self.select_one_by_one(start, below, p2, le),
            0x6200..=0x62FF => Ok(()),
            sw => self.status(sw),
        }
    }

    /// The same path, one SELECT per identifier (P1 00), for cards that take no paths.
    fn select_one_by_one(&mut self, start: Option<&Vec<u8>>, below: &[u16], p2: u8, le: usize) -> Result<()> {
        match start {
            Some(name) => self.select_name(name, 0x0C, 0)?,
            None => self.select_id(reference::MF, 0x0C, 0)?,
        }
        let Some((last, path)) = below.split_last() else { return Ok(()) };
        for &id in path {
            self.select_id(id, 0x0C, 0)?;
        }
        self.select_id(*last, p2, le)
    }

    fn select_id(&mut self, id: u16, p2: u8, le: usize) -> Result<()> {
        self.data.clear();
        self.data.extend(id.to_be_bytes());
        self.run_select([0x00, 0xA4, 0x00, p2], le)
    }

    fn select_name(&mut self, name: &[u8], p2: u8, le: usize) -> Result<()> {
        self.data.clear();
        self.data.extend_from_slice(name);
        self.run_select([0x00, 0xA4, 0x04, p2], le)
    }
}

/// What `read` did: the bytes read, or for a record longer than the buffer, the record's
/// length (nothing consumed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    Read(usize),
    TooSmall(usize),
}

impl FileAccess {
    pub fn new(manager: usize) -> FileAccess {
        FileAccess { manager, directory: Location::default(), files: OpenFiles::default() }
    }

    /// Where a reference by name or identifiers leads; a short EF identifier names no file a
    /// SELECT can reach, so what needs a SELECT cannot take one (`SCM_E_NOTIMPL`).
    fn selectable(&self, reference: &Reference) -> Result<Location> {
        self.directory.resolve(reference)?.ok_or(SCM_E_NOTIMPL)
    }

    pub fn change_dir(&mut self, manager: &mut Manager, reference: &Reference) -> Result<()> {
        let location = self.directory.resolve(reference)?.ok_or(SCM_SCARD_E_NO_DIR)?;
        let mut card = Session::new(manager)?;
        card.select(&location, true)?;
        if says_ef(&card.answer)? {
            return Err(SCM_SCARD_E_NO_DIR);
        }
        self.directory = location;
        Ok(())
    }

    pub fn current_dir(&self, manager: &Manager) -> Result<Vec<u8>> {
        attached(manager)?;
        Ok(self.directory.text())
    }

    pub fn open(&mut self, manager: &mut Manager, reference: &Reference) -> Result<u32> {
        let place = match (self.directory.resolve(reference)?, reference) {
            (Some(location), _) => Place::Selected(location),
            (None, &Reference::Short(id)) => Place::Short { directory: self.directory.clone(), id },
            (None, _) => return Err(SCM_E_UNEXPECTED),
        };
        let mut card = Session::new(manager)?;
        if self.files.is_full() {
            return Err(SCM_E_OUTOFMEMORY);
        }
        let structure = match &place {
            Place::Selected(location) => {
                card.select(location, true)?;
                match describe(&card.answer)? {
                    Some(file) if file.directory == Some(true) => return Err(SCM_SCARD_E_NO_FILE),
                    Some(file) => file.structure,
                    None => Structure::Transparent { size: None },
                }
            }
            Place::Short { directory, id } => {
                card.select(directory, false)?;
                card.probe(*id)?
            }
        };
        self.files.open(OpenFile { place, structure, position: 0 })
    }

    pub fn read(
        &mut self,
        manager: &mut Manager,
        number: u32,
        buf: &mut [MaybeUninit<u8>],
    ) -> Result<ReadOutcome> {
        let file = self.files.get(number)?;
        let mut card = Session::new(manager)?;
        match file.structure {
            Structure::Transparent { size } => {
                let count = card.read_bytes(&file.place, size, file.position, buf)?;
                file.position += count as u64;
                Ok(ReadOutcome::Read(count))
            }
            Structure::Records { count } => {
                let outcome = card.read_record(&file.place, count, file.position, buf)?;
                if let ReadOutcome::Read(_) = outcome {
                    file.position += 1;
                }
                Ok(outcome)
            }
        }
    }

    pub fn write(&mut self, manager: &mut Manager, number: u32, data: &[u8], append: bool) -> Result<()> {
        let file = self.files.get(number)?;
        let invalid = match file.structure {
            Structure::Transparent { .. } => append,
            Structure::Records { .. } => data.is_empty(),
        };
        if invalid {
            return Err(SCM_E_INVALIDARG);
        }
        let mut card = Session::new(manager)?;
        match (&mut file.structure, append) {
            (Structure::Transparent { size }, _) => {
                card.write_bytes(&file.place, *size, file.position, data)?;
                file.position += data.len() as u64;
                Ok(())
            }
            (Structure::Records { count }, true) => {
                card.append_record(&file.place, data)?;
                *count = count.map(|count| count + 1);
                Ok(())
            }
            (Structure::Records { .. }, false) => {
                card.update_record(&file.place, file.position, data)?;
                file.position += 1;
                Ok(())
            }
        }
    }

    pub fn seek(&mut self, manager: &Manager, number: u32, origin: u32, offset: i64) -> Result<u64> {
        let origin = positions::Origin::from_c(origin)?;
        let file = self.files.get(number)?;
        attached(manager)?;
        file.position = positions::seek(file.position, origin, offset, file.structure.end())?;
        Ok(file.position)
    }

    pub fn close(&mut self, manager: &Manager, number: u32) -> Result<()> {
        self.files.get(number)?;
        attached(manager)?;
        self.files.close(number)
    }

    pub fn properties(&mut self, manager: &mut Manager, reference: &Reference) -> Result<Vec<u8>> {
        let location = self.selectable(reference)?;
        let mut card = Session::new(manager)?;
        card.select(&location, true)?;
        match card.answer.first() {
            Some(0x62) => Fcp::parse(&card.answer)?,
            _ => return Err(MALFORMED_DATA),
        };
        Ok(card.answer)
    }

    pub fn create(&mut self, manager: &mut Manager, reference: &Reference, fcp: &[u8]) -> Result<()> {
        let location = self.selectable(reference)?;
        // A DF named by its name is made in the current directory; a file named by identifiers
        // in the directory above its last one (the MF, which exists first, has none).
        let parent = match reference {
            Reference::Name(_) => self.directory.clone(),
            _ => location.parent().ok_or(SCM_E_INVALIDARG)?,
        };
        let template = with_identity(fcp, reference)?;
        let mut card = Session::new(manager)?;
        if template.len() > card.limits.command {
            return Err(SCM_E_INVALIDARG);
        }
        card.select(&parent, false)?;
        card.data = template;
        card.run([0x00, 0xE0, 0x00, 0x00], true, 0)
    }

    /// DELETE FILE (E4), DEACTIVATE FILE (04) or ACTIVATE FILE (44) on the file selected first.
    pub fn manage(&mut self, manager: &mut Manager, reference: &Reference, ins: u8) -> Result<()> {
        let location = self.selectable(reference)?;
        let mut card = Session::new(manager)?;
        card.select(&location, false)?;
        card.run([0x00, ins, 0x00, 0x00], false, 0)
    }
}

/// `SCM_E_NOT_ATTACHED` for an unattached manager, for the calls that send nothing.
fn attached(manager: &Manager) -> Result<()> {
    match manager.is_attached() {
        true => Ok(()),
        false => Err(SCM_E_NOT_ATTACHED),
    }
}

impl Session<'_> {
    /// Brings the card to an open file: selects it, or for a short EF identifier its directory,
    /// returning the identifier for the call's first command to name.
    fn reach(&mut self, place: &Place) -> Result<Option<u8>> {
        match place {
            Place::Selected(location) => self.select(location, false).map(|()| None),
            Place::Short { directory, id } => self.select(directory, false).map(|()| Some(*id)),
        }
    }

    /// What a file named by its short EF identifier holds (ISO 7816-4 has no SELECT for it):
    /// one READ BINARY of one byte at offset 0, which a record file refuses with 6981.
    fn probe(&mut self, id: u8) -> Result<Structure> {
        match self.send([0x00, 0xB0, 0x80 | id, 0x00], false, 1)? {
            0x6981 => Ok(Structure::Records { count: None }),
            // An empty transparent file.
            0x6B00 | 0x6282 => Ok(Structure::Transparent { size: None }),
            sw => self.status(sw).map(|()| Structure::Transparent { size: None }),
        }
    }

    /// Reads up to `buf.len()` bytes at `position` of a transparent file, in as many READ
    /// BINARY commands as it takes. A short answer, 6282 or 6B00 ends the file. A failure after
    /// some bytes were read ends the call with those bytes; the next call meets it again.
    fn read_bytes(
        &mut self,
        place: &Place,
        size: Option<u64>,
        position: u64,
        buf: &mut [MaybeUninit<u8>],
    ) -> Result<usize> {
        let want = positions::readable(position, size, buf.len())?;
        if want == 0 {
            return Ok(0);
        }
        let mut short_id = self.reach(place)?;
        let mut done = 0;
        while done < want {
            let offset = position + done as u64;
            let step = binary::read_step(offset, want - done, short_id.take(), self.limits.response);
            let read = self.read_step(&step, want - done);
            let (data, ended) = match read {
                Ok(read) => read,
                Err(_) if done > 0 => break,
                Err(code) => return Err(code),
            };
            let count = data.len();
            fill(&mut buf[done..done + count], &self.answer[data]);
            done += count;
            if ended || count < step.chunk {
                break;
            }
        }
        match done {
            0 => Err(SCM_SCARD_W_EOF),
            done => Ok(done),
        }
    }

    /// Sends one READ BINARY: where its file bytes are in `self.answer` (at most `room`), and
    /// whether the card said the file ends there.
    fn read_step(&mut self, step: &binary::Step, room: usize) -> Result<(std::ops::Range<usize>, bool)> {
        self.data.clone_from(&step.prefix);
        let sw = self.send([0x00, step.ins, step.p1, step.p2], !step.prefix.is_empty(), step.le)?;
        let ended = match sw {
            0x6B00 => return Ok((0..0, true)),
            0x6282 => true,
            sw => self.status(sw).map(|()| false)?,
        };
        let data = match (step.ins, self.capabilities.t0) {
            (0xB0, _) => {
                Some(&self.answer[..]).filter(|data| data.len() <= step.chunk).ok_or(BROKEN_EXCHANGE)
            }
            (_, false) => binary::unwrap_odd_answer(&self.answer, step.chunk).ok_or(MALFORMED_DATA),
            // T=0 sends the odd instruction, which has data, without its Le (ISO 7816-3
            // 12.2.4): the card cannot know how much is wanted and may answer with the rest of
            // the file. What the call wants of it is taken.
            (_, true) => binary::unwrap_odd_answer(&self.answer, usize::MAX)
                .map(|data| &data[..data.len().min(room)])
                .ok_or(MALFORMED_DATA),
        }?;
        let start = data.as_ptr() as usize - self.answer.as_ptr() as usize;
        Ok((start..start + data.len(), ended))
    }

    /// Writes `data` at `position` of a transparent file, in as many UPDATE BINARY commands as
    /// it takes; refused before any command when the file's known size cannot hold it.
    fn write_bytes(&mut self, place: &Place, size: Option<u64>, position: u64, data: &[u8]) -> Result<()> {
        let end = position.checked_add(data.len() as u64).ok_or(SCM_SCARD_E_WRITE_TOO_MANY)?;
        if end > size.unwrap_or(positions::MAX_POSITION + 1).min(positions::MAX_POSITION + 1) {
            return Err(SCM_SCARD_E_WRITE_TOO_MANY);
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut short_id = self.reach(place)?;
        let mut done = 0;
        while done < data.len() {
            let offset = position + done as u64;
            let step = binary::write_step(offset, data.len() - done, short_id.take(), self.limits.command);
            self.data.clone_from(&step.prefix);
            self.data.extend_from_slice(&data[done..done + step.chunk]);
            self.run([0x00, step.ins, step.p1, step.p2], true, 0)?;
            done += step.chunk;
        }
        Ok(())
    }

    /// P2 of the record commands: the short EF identifier, or the current EF; and with `by_number`
    /// "record number in P1" (4).
    fn record_p2(short_id: Option<u8>, by_number: bool) -> u8 {
        short_id.unwrap_or(0) << 3 | if by_number { 0x04 } else { 0 }
    }

    /// READ RECORD of the record at `position` (record `position + 1`).
    fn read_record(
        &mut self,
        place: &Place,
        count: Option<u64>,
        position: u64,
        buf: &mut [MaybeUninit<u8>],
    ) -> Result<ReadOutcome> {
        if position >= count.unwrap_or(LAST_RECORD).min(LAST_RECORD) {
            return Err(SCM_SCARD_W_EOF);
        }
        let p2 = Self::record_p2(self.reach(place)?, true);
        match self.send([0x00, 0xB2, position as u8 + 1, p2], false, self.limits.response)? {
            0x6A83 => return Err(SCM_SCARD_W_EOF),
            sw => self.status(sw)?,
        }
        let record = &self.answer;
        if record.len() > self.limits.response {
            return Err(BROKEN_EXCHANGE);
        }
        match buf.get_mut(..record.len()) {
            Some(room) => {
                fill(room, record);
                Ok(ReadOutcome::Read(record.len()))
            }
            None => Ok(ReadOutcome::TooSmall(record.len())),
        }
    }

    /// Sends a record command with the record's data, which one command must carry, after
    /// bringing the card to the file.
    fn record_command(
        &mut self,
        place: &Place,
        ins: u8,
        p1: u8,
        by_number: bool,
        data: &[u8],
    ) -> Result<u16> {
        if data.len() > self.limits.command {
            return Err(SCM_E_INVALIDARG);
        }
        let p2 = Self::record_p2(self.reach(place)?, by_number);
        self.data.clear();
        self.data.extend_from_slice(data);
        self.send([0x00, ins, p1, p2], true, 0)
    }

    /// UPDATE RECORD of the record at `position`; past the last record `SCM_SCARD_W_EOF`.
    fn update_record(&mut self, place: &Place, position: u64, data: &[u8]) -> Result<()> {
        if position >= LAST_RECORD {
            return Err(SCM_SCARD_W_EOF);
        }
        match self.record_command(place, 0xDC, position as u8 + 1, true, data)? {
            0x6A83 => Err(SCM_SCARD_W_EOF),
            sw => self.status(sw),
        }
    }

    /// APPEND RECORD: a new record after the last.
    fn append_record(&mut self, place: &Place, data: &[u8]) -> Result<()> {
        let sw = self.record_command(place, 0xE2, 0x00, false, data)?;
        self.status(sw)
    }
}

/// What a SELECT's FCP says of the file; `None` when the card sent no FCP. A malformed one is
/// `MALFORMED_DATA`.
fn describe(answer: &[u8]) -> Result<Option<Description>> {
    if answer.is_empty() {
        return Ok(None);
    }
    let fcp = Fcp::parse(answer)?;
    let structure = match fcp.structure() {
        Some(tlv::Structure::Df) => {
            return Ok(Some(Description {
                directory: Some(true),
                structure: Structure::Transparent { size: None },
            }))
        }
        Some(tlv::Structure::LinearFixed | tlv::Structure::LinearVariable | tlv::Structure::Cyclic) => {
            Structure::Records { count: fcp.record_count.map(u64::from) }
        }
        Some(tlv::Structure::Transparent | tlv::Structure::Other(_)) | None => {
            Structure::Transparent { size: fcp.size }
        }
    };
    Ok(Some(Description { directory: fcp.structure().map(|_| false), structure }))
}

/// Whether a SELECT's answer says the file is an EF, which `change_dir` refuses. An FCP or FCI
/// without a file descriptor does not (an application's FCI often holds its DF name and
/// proprietary data only): like no FCP at all, the card is taken at its word.
fn says_ef(answer: &[u8]) -> Result<bool> {
    Ok(describe(answer)?.is_some_and(|file| file.directory == Some(false)))
}

/// The caller's FCP for CREATE FILE, with the identity the reference gives the file: its file
/// identifier (`83`) or DF name (`84`), added at the front of the template when it is not
/// there, left as it is when it is and agrees. A template that is not one well-formed `62`
/// object, or whose identity disagrees with the reference, is `SCM_E_INVALIDARG`.
fn with_identity(fcp: &[u8], identity: &Reference) -> Result<Vec<u8>> {
    let parsed = match fcp.first() {
        Some(0x62) => Fcp::parse(fcp).map_err(|_| SCM_E_INVALIDARG)?,
        _ => return Err(SCM_E_INVALIDARG),
    };
    let (tag, value, present) = match identity {
        Reference::Name(name) => (0x84, name.clone(), parsed.df_name.map(|present| present == name)),
        Reference::Path { ids, .. } => {
            let id = *ids.last().ok_or(SCM_E_INVALIDARG)?;
            (0x83, id.to_be_bytes().to_vec(), parsed.file_id.map(|present| present == id))
        }
        Reference::Short(_) => return Err(SCM_E_NOTIMPL),
    };
    match present {
        Some(true) => Ok(fcp.to_vec()),
        Some(false) => Err(SCM_E_INVALIDARG),
        None => {
            let outer =
                tlv::Reader::new(fcp).next().ok_or(SCM_E_INVALIDARG)?.map_err(|_| SCM_E_INVALIDARG)?;
            let mut fields = binary::object_header(tag, value.len());
            fields.extend_from_slice(&value);
            fields.extend_from_slice(outer.value);
            let mut template = binary::object_header(0x62, fields.len());
            template.extend(fields);
            Ok(template)
        }
    }
}

/// Copies into the caller's buffer, which may be uninitialised memory: it is written, never read.
fn fill(room: &mut [MaybeUninit<u8>], data: &[u8]) {
    for (slot, &byte) in room.iter_mut().zip(data) {
        slot.write(byte);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_fcp_says() {
        assert_eq!(describe(&[]), Ok(None), "no FCP");
        let df = [0x62, 0x03, 0x82, 0x01, 0x38];
        assert_eq!(describe(&df).unwrap().unwrap().directory, Some(true));
        let ef = [0x62, 0x07, 0x82, 0x01, 0x01, 0x80, 0x02, 0x9C, 0x40];
        assert_eq!(
            describe(&ef),
            Ok(Some(Description {
                directory: Some(false),
                structure: Structure::Transparent { size: Some(40_000) }
            }))
        );
        let records = [0x62, 0x07, 0x82, 0x05, 0x02, 0x21, 0x00, 0x10, 0x03];
        assert_eq!(describe(&records).unwrap().unwrap().structure, Structure::Records { count: Some(3) });
        let no_descriptor = [0x62, 0x04, 0x80, 0x02, 0x01, 0x00];
        assert_eq!(
            describe(&no_descriptor).unwrap().unwrap().structure,
            Structure::Transparent { size: Some(256) }
        );
        for bad in [&[0x62, 0x05, 0x82, 0x01][..], &[0x90], &[0x62, 0x81]] {
            assert_eq!(describe(bad), Err(MALFORMED_DATA), "{bad:02X?}");
        }
    }

    #[test]
    fn only_an_fcp_that_says_ef_is_not_a_directory() {
        assert_eq!(says_ef(&[]), Ok(false), "no FCP: taken at its word");
        assert_eq!(says_ef(&[0x62, 0x03, 0x82, 0x01, 0x38]), Ok(false), "a DF");
        assert_eq!(says_ef(&[0x62, 0x03, 0x82, 0x01, 0x01]), Ok(true), "a transparent EF");
        assert_eq!(says_ef(&[0x62, 0x05, 0x82, 0x03, 0x02, 0x21, 0x10]), Ok(true), "a record EF");
        // Templates without a file descriptor (82) say nothing of the structure: an application's
        // FCI with its DF name only, an FCP with a file identifier only.
        assert_eq!(says_ef(&[0x6F, 0x07, 0x84, 0x05, 0xA0, 0x00, 0x00, 0x00, 0x63]), Ok(false));
        assert_eq!(says_ef(&[0x62, 0x04, 0x83, 0x02, 0x50, 0x00]), Ok(false));
    }

    #[test]
    fn the_fcp_for_create_gets_the_references_identity() {
        let id = Reference::Path { absolute: false, ids: vec![0x5010] };
        let fcp = [0x62, 0x03, 0x82, 0x01, 0x01];
        assert_eq!(with_identity(&fcp, &id), Ok(vec![0x62, 0x07, 0x83, 0x02, 0x50, 0x10, 0x82, 0x01, 0x01]));
        let agreeing = [0x62, 0x07, 0x82, 0x01, 0x01, 0x83, 0x02, 0x50, 0x10];
        assert_eq!(with_identity(&agreeing, &id), Ok(agreeing.to_vec()), "left as it is");
        let other = [0x62, 0x07, 0x82, 0x01, 0x01, 0x83, 0x02, 0x50, 0x11];
        assert_eq!(with_identity(&other, &id), Err(SCM_E_INVALIDARG));
        let name = Reference::Name(vec![0xA0, 0x01]);
        let df = [0x62, 0x03, 0x82, 0x01, 0x38];
        assert_eq!(with_identity(&df, &name), Ok(vec![0x62, 0x07, 0x84, 0x02, 0xA0, 0x01, 0x82, 0x01, 0x38]));
        let named = [0x62, 0x07, 0x82, 0x01, 0x38, 0x84, 0x02, 0xA0, 0x01];
        assert_eq!(with_identity(&named, &name), Ok(named.to_vec()), "its DF name agrees: left as it is");
        let misnamed = [0x62, 0x07, 0x82, 0x01, 0x38, 0x84, 0x02, 0xA0, 0x02];
        assert_eq!(with_identity(&misnamed, &name), Err(SCM_E_INVALIDARG));
        // A template grown past 127 bytes takes the two-byte length form.
        let mut long = vec![0x62, 0x7F, 0x82, 0x01, 0x01, 0x85, 0x7A];
        long.extend([0xAA; 0x7A]);
        let grown = with_identity(&long, &id).unwrap();
        assert_eq!(&grown[..3], [0x62, 0x81, 0x83]);
        assert_eq!(Fcp::parse(&grown).unwrap().file_id, Some(0x5010));
        for bad in
            [&[][..], &[0x6F, 0x03, 0x82, 0x01, 0x01], &[0x62, 0x05, 0x82, 0x01], &[0x62, 0x03, 0x82, 0x01]]
        {
            assert_eq!(with_identity(bad, &id), Err(SCM_E_INVALIDARG), "{bad:02X?}");
        }
        assert_eq!(with_identity(&fcp, &Reference::Short(1)), Err(SCM_E_NOTIMPL));
    }

    /// A seeded property test over what reads a card's or a caller's bytes here: the odd READ
    /// BINARY's answer, the FCP as the file functions read it, the caller's FCP for CREATE FILE
    /// and the reference texts. Nothing panics, nothing outside the input is returned, and what
    /// is accepted keeps its promises. `SCM_FUZZ_INPUTS` sets the count (default 100 000).
    #[test]
    fn random_answers_and_references_keep_their_promises() {
        const TEXT: &[u8] = b"0123456789abcdefABCDEF3F00/5/ xG";
        let inputs = std::env::var("SCM_FUZZ_INPUTS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000);
        let mut state = 0x1505_F11E_5CA2_D0A6_u64;
        let mut byte = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u8
        };
        let id = Reference::Path { absolute: false, ids: vec![0x5010] };
        for _ in 0..inputs {
            let len = usize::from(byte()) % 48;
            let mut bytes: Vec<u8> = (0..len).map(|_| byte()).collect();
            // Lead with the tags these readers look for, and a length that may fit, half the time.
            if len >= 2 && byte() & 1 == 0 {
                bytes[0] = [0x53, 0x62][usize::from(byte() & 1)];
                bytes[1] = (len - 2) as u8 ^ (byte() & byte() & 0x83);
            }
            let asked = usize::from(byte());
            if let Some(data) = binary::unwrap_odd_answer(&bytes, asked) {
                assert!(
                    data.len() <= asked && bytes.as_ptr_range().end == data.as_ptr_range().end,
                    "{bytes:02X?}"
                );
            }
            let _ = describe(&bytes);
            if let Ok(template) = with_identity(&bytes, &id) {
                assert_eq!(Fcp::parse(&template).map(|fcp| fcp.file_id), Ok(Some(0x5010)), "{bytes:02X?}");
            }
            let text: Vec<u8> = bytes.iter().map(|b| TEXT[usize::from(*b) % TEXT.len()]).collect();
            for kind in 0..4 {
                let Ok(reference) = Reference::parse(kind, &text) else { continue };
                if let Ok(Some(location)) = Location::default().resolve(&reference) {
                    // The current directory's text names the same place again.
                    let shown = location.text();
                    let again = match &location {
                        Location::FromMf(_) => Reference::parse(1, &shown[..shown.len() - 1]),
                        Location::FromName { .. } => continue,
                    };
                    assert_eq!(Location::default().resolve(&again.unwrap()), Ok(Some(location)));
                }
            }
        }
    }
}

//! The commands of the card: file selection and access, file management, card holder
//! verification, authentication.

use super::apdu::{find, number, parse_tlvs, sw, tlv, tlv_header_len, Command, SHORT_MAX};
use super::engine::{Answer, Card};
use super::files::{Access, Body, Node, MF_INDEX};
use super::Hostile;

type Outcome<T> = Result<T, u16>;

/// The shortest and longest codes CHANGE REFERENCE DATA and RESET RETRY COUNTER accept.
const CODE_LENGTHS: std::ops::RangeInclusive<usize> = 4..=16;

/// The data objects of an odd instruction's data field (none for an even instruction).
fn odd_objects(command: &Command) -> Outcome<Vec<(u16, &[u8])>> {
    if command.ins & 1 == 0 {
        return Ok(Vec::new());
    }
    parse_tlvs(&command.data).ok_or(sw::WRONG_DATA)
}

impl Card {
    /// Runs a (complete, unchained) command.
    pub(super) fn execute(&mut self, command: &Command) -> Answer {
        let outcome = match command.ins {
            0xA4 => self.select(command),
            0xB0 | 0xB1 => self.read_binary(command),
            0xD6 | 0xD7 => self.update_binary(command).map(Answer::from),
            0xB2 => self.read_record(command),
            0xDC | 0xE2 => self.write_record(command).map(Answer::from),
            0xE0 => self.create_file(command).map(Answer::from),
            0xE4 | 0x04 | 0x44 => self.manage_file(command).map(Answer::from),
            0x20 => self.verify(command).map(Answer::from),
            0x24 => self.change_reference_data(command).map(Answer::from),
            0x2C => self.reset_retry_counter(command).map(Answer::from),
            0x84 => self.get_challenge(command),
            0x88 => self.internal_authenticate(command),
            0x82 => self.external_authenticate(command).map(Answer::from),
            _ => Err(sw::NO_INS),
        };
        outcome.unwrap_or_else(Answer::status)
    }

    /// The file P1 and the data designate as SELECT reads them (P1 00, 01, 02, 03, 04, 08,
    /// 09); `occurrence` is P2's low bits.
    fn resolve(&self, p1: u8, data: &[u8], occurrence: u8) -> Outcome<usize> {
        let df = self.volatile.df;
        let ids = || -> Outcome<Vec<u16>> {
            if data.is_empty() || !data.len().is_multiple_of(2) {
                return Err(sw::DATA_INCONSISTENT);
            }
            Ok(data.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect())
        };
        let one_id = || -> Outcome<u16> {
            match ids()?.as_slice() {
                [id] => Ok(*id),
                _ => Err(sw::DATA_INCONSISTENT),
            }
        };
        if occurrence != 0 && p1 != 0x04 {
            return Err(sw::WRONG_P1P2);
        }
        let found = match p1 {
            0x00 if data.is_empty() => Some(MF_INDEX),
            0x00 => {
                let id = one_id()?;
                let parent = self.files.node(df).parent;
                if id == super::MF {
                    Some(MF_INDEX)
                } else if self.files.node(df).id == id {
                    Some(df)
                } else {
                    self.files.child(df, id).or_else(|| {
                        let parent = parent?;
                        (self.files.node(parent).id == id)
                            .then_some(parent)
                            .or_else(|| self.files.child(parent, id))
                    })
                }
            }
            0x01 | 0x02 => {
                let want_df = p1 == 0x01;
                self.files.child(df, one_id()?).filter(|&i| self.files.node(i).is_df() == want_df)
            }
            0x03 if data.is_empty() => self.files.node(df).parent,
            0x03 => return Err(sw::DATA_INCONSISTENT),
            0x04 if data.is_empty() || data.len() > 16 => return Err(sw::DATA_INCONSISTENT),
            // One file per name: "first" and "last" find it, "next" and "previous" nothing.
            0x04 => self.files.by_name(data).filter(|_| occurrence < 2),
            0x08 => {
                let ids = ids()?;
                let path = ids.strip_prefix(&[super::MF]).unwrap_or(&ids);
                self.files.walk(MF_INDEX, path)
            }
            0x09 => self.files.walk(df, &ids()?),
            _ => return Err(sw::WRONG_P1P2),
        };
        found.ok_or(sw::NOT_FOUND)
    }

    /// Makes `index` the current file: a DF becomes the current DF, an EF the current EF (its
    /// DF the current DF).
    fn make_current(&mut self, index: usize) {
        let node = self.files.node(index);
        if node.is_df() {
            self.volatile.df = index;
            self.volatile.ef = None;
        } else {
            self.volatile.df = node.parent.unwrap_or(MF_INDEX);
            self.volatile.ef = Some(index);
        }
    }

    fn select(&mut self, command: &Command) -> Outcome<Answer> {
        if command.p2 & 0xF0 != 0 {
            return Err(sw::WRONG_P1P2);
        }
        let index = self.resolve(command.p1, &command.data, command.p2 & 0x03)?;
        self.make_current(index);
        let node = self.files.node(index);
        let status = if node.active { sw::OK } else { sw::DEACTIVATED };
        let template = match command.p2 & 0x0C {
            0x00 => 0x6F,
            0x04 => 0x62,
            0x08 => return Ok(Answer::data(tlv(0x64, &[]), status)),
            _ => return Ok(Answer::status(status)),
        };
        let data = match self.hostile() {
            Hostile::FcpLengthLies => {
                let mut fcp = tlv(template, &node.fcp_objects());
                fcp[1] += 16;
                fcp
            }
            Hostile::FcpTruncated => vec![0x62, 0x08, 0x82, 0x01, 0x01, 0x83, 0x02, 0x50, 0x01, 0x9F],
            Hostile::FcpLongLengthForm => {
                vec![0x62, 0x84, 0x00, 0x00, 0x00, 0x09, 0x82, 0x01, 0x01, 0x80, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]
            }
            _ => tlv(template, &node.fcp_objects()),
        };
        Ok(Answer::data(data, status))
    }

    /// The EF a short EF identifier designates in the current DF (0: the current EF), made
    /// current.
    fn ef_by_sfi(&mut self, sfi: u8) -> Outcome<usize> {
        let index = match sfi {
            0 => self.volatile.ef.ok_or(sw::NO_CURRENT_EF)?,
            1..=30 => self.files.child_by_sfi(self.volatile.df, sfi).ok_or(sw::NOT_FOUND)?,
            _ => return Err(sw::WRONG_P1P2),
        };
        self.make_current(index);
        Ok(index)
    }

    /// The EF and offset of READ/UPDATE BINARY: the even instruction's P1-P2 (SFI and 8-bit
    /// offset, or a 15-bit offset in the current EF), or the odd one's (file id, SFI or current
    /// EF) with the offset in data object `54`.
    fn binary_target(&mut self, command: &Command, objects: &[(u16, &[u8])]) -> Outcome<(usize, usize)> {
        let (p1, p2) = (command.p1, command.p2);
        if command.ins & 1 == 0 {
            return if p1 & 0x80 != 0 {
                if p1 & 0x60 != 0 {
                    return Err(sw::WRONG_P1P2);
                }
                Ok((self.ef_by_sfi(p1 & 0x1F)?, usize::from(p2)))
            } else {
                Ok((self.ef_by_sfi(0)?, usize::from(command.p1p2())))
            };
        }
        let offset = find(objects, 0x54).and_then(number).ok_or(sw::WRONG_DATA)?;
        let index = match command.p1p2() {
            id @ 0x0000..=0x001F => self.ef_by_sfi(id as u8)?,
            id => {
                let index = self.files.child(self.volatile.df, id).ok_or(sw::NOT_FOUND)?;
                self.make_current(index);
                index
            }
        };
        Ok((index, offset))
    }

    /// The EF `index` if it may be used with `access` (read or update) now.
    fn check_access(&self, index: usize, access: fn(&Node) -> Access) -> Outcome<()> {
        let node = self.files.node(index);
        if node.is_df() {
            return Err(sw::NO_CURRENT_EF);
        }
        if !node.active {
            return Err(sw::CONDITIONS);
        }
        match access(node) {
            Access::Always => Ok(()),
            Access::Pin if self.volatile.verified[0] => Ok(()),
            Access::Pin => Err(sw::SECURITY),
            Access::Never => Err(sw::CONDITIONS),
        }
    }

    fn read_binary(&mut self, command: &Command) -> Outcome<Answer> {
        let objects = odd_objects(command)?;
        let (index, offset) = self.binary_target(command, &objects)?;
        let ne = command.ne.ok_or(sw::WRONG_LENGTH)?;
        self.check_access(index, |n| n.read)?;
        let Body::Transparent(bytes) = &self.files.node(index).body else {
            return Err(sw::WRONG_STRUCTURE);
        };
        if offset >= bytes.len() {
            return Err(sw::WRONG_OFFSET);
        }
        let limit = ne.min(super::MAX_RESPONSE_DATA);
        let odd = command.ins & 1 == 1;
        // The odd instruction wraps the bytes in `53`, whose header counts against Ne.
        let room = if odd {
            (0..=limit).rev().find(|&n| n + tlv_header_len(n) <= limit).unwrap_or(0)
        } else {
            limit
        };
        let n = room.min(bytes.len() - offset);
        let chunk = &bytes[offset..offset + n];
        let data = if odd { tlv(0x53, chunk) } else { chunk.to_vec() };
        let status = if n < room && !command.wants_all() { sw::END_REACHED } else { sw::OK };
        Ok(Answer::data(data, status))
    }

    fn update_binary(&mut self, command: &Command) -> Outcome<u16> {
        let objects = odd_objects(command)?;
        let (index, offset) = self.binary_target(command, &objects)?;
        let data =
            if command.ins & 1 == 1 { find(&objects, 0x53).ok_or(sw::WRONG_DATA)? } else { &command.data };
        if data.is_empty() {
            return Err(sw::WRONG_LENGTH);
        }
        self.check_access(index, |n| n.update)?;
        let Body::Transparent(bytes) = &mut self.files.node_mut(index).body else {
            return Err(sw::WRONG_STRUCTURE);
        };
        if offset > bytes.len() {
            return Err(sw::WRONG_OFFSET);
        }
        let end = offset.checked_add(data.len()).filter(|&end| end <= bytes.len()).ok_or(sw::NO_MEMORY)?;
        bytes[offset..end].copy_from_slice(data);
        Ok(sw::OK)
    }

    /// The record EF of READ/UPDATE/APPEND RECORD: P2's SFI (0: the current EF), with the low
    /// bits `reference` must have.
    fn record_target(&mut self, p2: u8, reference: u8, access: fn(&Node) -> Access) -> Outcome<usize> {
        if p2 & 0x07 != reference {
            return Err(sw::WRONG_P1P2);
        }
        let index = self.ef_by_sfi(p2 >> 3)?;
        self.check_access(index, access)?;
        Ok(index)
    }

    fn read_record(&mut self, command: &Command) -> Outcome<Answer> {
        let index = self.record_target(command.p2, 0x04, |n| n.read)?;
        command.ne.ok_or(sw::WRONG_LENGTH)?;
        let Body::Records { records, .. } = &self.files.node(index).body else {
            return Err(sw::WRONG_STRUCTURE);
        };
        let record = usize::from(command.p1)
            .checked_sub(1)
            .and_then(|i| records.get(i))
            .ok_or(sw::RECORD_NOT_FOUND)?;
        Ok(Answer::data(record.clone(), sw::OK))
    }

    /// UPDATE RECORD (DC, P1 the record number, P2 low bits 100) and APPEND RECORD (E2, P1 00,
    /// P2 low bits 000).
    fn write_record(&mut self, command: &Command) -> Outcome<u16> {
        let append = command.ins == 0xE2;
        if append && command.p1 != 0 {
            return Err(sw::WRONG_P1P2);
        }
        let index = self.record_target(command.p2, if append { 0 } else { 0x04 }, |n| n.update)?;
        let Body::Records { len, capacity, records } = &mut self.files.node_mut(index).body else {
            return Err(sw::WRONG_STRUCTURE);
        };
        if command.data.len() != *len {
            return Err(sw::WRONG_LENGTH);
        }
        if append {
            if records.len() >= *capacity {
                return Err(sw::NO_MEMORY);
            }
            records.push(command.data.clone());
        } else {
            let record = usize::from(command.p1)
                .checked_sub(1)
                .and_then(|i| records.get_mut(i))
                .ok_or(sw::RECORD_NOT_FOUND)?;
            record.clone_from(&command.data);
        }
        Ok(sw::OK)
    }

    /// CREATE FILE: an FCP template `62` describing a DF (`82 38`), a transparent EF (`82 01`,
    /// size `80`) or a linear-fixed one (`82 02 xx LL..`, capacity in bytes `80` or a record
    /// count in `82`), made in the current DF and selected.
    fn create_file(&mut self, command: &Command) -> Outcome<u16> {
        if command.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        let outer = parse_tlvs(&command.data).ok_or(sw::WRONG_DATA)?;
        let [(0x62, fcp)] = outer.as_slice() else {
            return Err(sw::WRONG_DATA);
        };
        let objects = parse_tlvs(fcp).ok_or(sw::WRONG_DATA)?;
        let descriptor = find(&objects, 0x82).ok_or(sw::WRONG_DATA)?;
        let id = match find(&objects, 0x83) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => return Err(sw::WRONG_DATA),
        };
        if matches!(id, super::MF | 0x3FFF | 0xFFFF) {
            return Err(sw::WRONG_DATA);
        }
        let sfi = match find(&objects, 0x88) {
            None => None,
            Some(&[b]) if (1..=30).contains(&(b >> 3)) && b & 0x07 == 0 => Some(b >> 3),
            Some(_) => return Err(sw::WRONG_DATA),
        };
        let size = find(&objects, 0x80).map(|v| number(v).ok_or(sw::WRONG_DATA)).transpose()?;
        let name = find(&objects, 0x84);
        let body = match descriptor {
            [0x38, ..] => Body::Df { name: name.map(<[u8]>::to_vec) },
            [0x01, ..] => Body::Transparent(vec![0; size.unwrap_or(0).min(super::CARD_MEMORY + 1)]),
            [0x02, _, rest @ ..] => {
                let (len, count) = match rest {
                    [len] => (usize::from(*len), None),
                    [hi, lo, count @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), number(count)),
                    [] => return Err(sw::WRONG_DATA),
                };
                let capacity = size.map(|s| s / len.max(1)).or(count).ok_or(sw::WRONG_DATA)?;
                if len == 0 || capacity == 0 {
                    return Err(sw::WRONG_DATA);
                }
                // Checked here: the product of two card-given numbers can pass usize on 32 bits.
                if len.checked_mul(capacity).is_none_or(|bytes| bytes > super::CARD_MEMORY) {
                    return Err(sw::NO_MEMORY);
                }
                Body::Records { len, capacity, records: Vec::new() }
            }
            _ => return Err(sw::WRONG_DATA),
        };
        if name.is_some_and(|n| n.is_empty() || n.len() > 16) {
            return Err(sw::WRONG_DATA);
        }
        let df = self.volatile.df;
        let clash = |i: usize| {
            let node = self.files.node(i);
            node.id == id || (sfi.is_some() && node.sfi == sfi)
        };
        if self.files.node(df).id == id || self.files.children(df).any(clash) {
            return Err(sw::FILE_EXISTS);
        }
        if let Body::Df { name: Some(name) } = &body {
            if self.files.by_name(name).is_some() {
                return Err(sw::NAME_EXISTS);
            }
        }
        let node = Node::new(id, sfi, body);
        if self.files.used() + node.body.size() > super::CARD_MEMORY {
            return Err(sw::NO_MEMORY);
        }
        let index = self.files.add(df, node);
        self.make_current(index);
        Ok(sw::OK)
    }

    /// DELETE FILE (E4), DEACTIVATE FILE (04), ACTIVATE FILE (44): the file P1 and the data
    /// designate as for SELECT, or with no data the current EF (else the current DF).
    fn manage_file(&mut self, command: &Command) -> Outcome<u16> {
        if command.p2 != 0 {
            return Err(sw::WRONG_P1P2);
        }
        let index = if command.data.is_empty() && command.p1 != 0x03 {
            self.volatile.ef.unwrap_or(self.volatile.df)
        } else {
            self.resolve(command.p1, &command.data, 0)?
        };
        match command.ins {
            0xE4 if index == MF_INDEX => return Err(sw::CONDITIONS),
            0xE4 => {
                let parent = self.files.node(index).parent.unwrap_or(MF_INDEX);
                if self.files.within(self.volatile.df, index) {
                    self.volatile.df = parent;
                }
                if self.volatile.ef.is_some_and(|ef| self.files.within(ef, index)) {
                    self.volatile.ef = None;
                }
                self.files.delete(index);
            }
            ins => self.files.node_mut(index).active = ins == 0x44,
        }
        Ok(sw::OK)
    }

    /// The code P2 names for VERIFY and its relatives.
    fn code(&self, reference: u8) -> Outcome<usize> {
        Card::code_index(reference).ok_or(sw::NO_REFERENCE)
    }

    fn verify(&mut self, command: &Command) -> Outcome<u16> {
        let code = self.code(command.p2)?;
        match command.p1 {
            0x00 => {}
            0xFF if command.data.is_empty() => {
                self.volatile.verified[code] = false;
                return Ok(sw::OK);
            }
            0xFF => return Err(sw::WRONG_LENGTH),
            _ => return Err(sw::WRONG_P1P2),
        }
        let lying = self.hostile() == Hostile::LyingTriesLeft;
        let secret = &mut self.codes[code];
        if command.data.is_empty() {
            return Ok(if self.volatile.verified[code] {
                sw::OK
            } else if secret.blocked() {
                sw::BLOCKED
            } else {
                secret.tries_sw()
            });
        }
        if lying && !secret.blocked() && command.data != secret.value {
            self.volatile.verified[code] = false;
            self.hostile_count += 1;
            let lie = usize::from(super::PIN_TRIES) + self.hostile_count;
            return Err(sw::tries(u8::try_from(lie).unwrap_or(u8::MAX)));
        }
        let outcome = secret.check(&command.data);
        self.volatile.verified[code] = outcome.is_ok();
        outcome.map(|()| sw::OK)
    }

    fn change_reference_data(&mut self, command: &Command) -> Outcome<u16> {
        let code = self.code(command.p2)?;
        let secret = &mut self.codes[code];
        let new = match command.p1 {
            0x00 => {
                if secret.blocked() {
                    return Err(sw::BLOCKED);
                }
                let old_len = secret.value.len();
                if command.data.len() <= old_len {
                    return Err(sw::WRONG_LENGTH);
                }
                let (old, new) = command.data.split_at(old_len);
                if !CODE_LENGTHS.contains(&new.len()) {
                    return Err(sw::WRONG_DATA);
                }
                secret.check(old)?;
                new
            }
            0x01 if self.volatile.verified[code] => &command.data,
            0x01 => return Err(sw::SECURITY),
            _ => return Err(sw::WRONG_P1P2),
        };
        if !CODE_LENGTHS.contains(&new.len()) {
            return Err(sw::WRONG_DATA);
        }
        secret.value = new.to_vec();
        Ok(sw::OK)
    }

    fn reset_retry_counter(&mut self, command: &Command) -> Outcome<u16> {
        if command.p2 != super::PIN_REF {
            return Err(sw::NO_REFERENCE);
        }
        let puk_len = self.puk.value.len();
        let new = match command.p1 {
            0x00 if command.data.len() <= puk_len => return Err(sw::WRONG_LENGTH),
            0x00 => Some(&command.data[puk_len..]),
            0x01 if command.data.len() == puk_len => None,
            0x01 => return Err(sw::WRONG_LENGTH),
            _ => return Err(sw::WRONG_P1P2),
        };
        if new.is_some_and(|new| !CODE_LENGTHS.contains(&new.len())) {
            return Err(sw::WRONG_DATA);
        }
        self.puk.check(&command.data[..puk_len])?;
        let pin = &mut self.codes[0];
        pin.unblock();
        if let Some(new) = new {
            pin.value = new.to_vec();
        }
        Ok(sw::OK)
    }

    fn get_challenge(&mut self, command: &Command) -> Outcome<Answer> {
        if command.p1p2() != 0 {
            return Err(sw::WRONG_P1P2);
        }
        let n = command.ne.filter(|&n| n <= SHORT_MAX).ok_or(sw::WRONG_LENGTH)?;
        let challenge: Vec<u8> =
            std::iter::repeat_with(crate::applet::challenge).flat_map(u64::to_be_bytes).take(n).collect();
        self.volatile.challenge = Some(challenge.clone());
        Ok(Answer::data(challenge, sw::OK))
    }

    /// The checks INTERNAL and EXTERNAL AUTHENTICATE share: P1 00, P2 a known key.
    fn auth_parameters(command: &Command) -> Outcome<()> {
        if command.p1 != 0 {
            return Err(sw::WRONG_P1P2);
        }
        if !matches!(command.p2, 0 | super::AUTH_KEY_REF) {
            return Err(sw::NO_REFERENCE);
        }
        Ok(())
    }

    fn internal_authenticate(&mut self, command: &Command) -> Outcome<Answer> {
        Card::auth_parameters(command)?;
        if command.data.is_empty() || command.data.len() > SHORT_MAX {
            return Err(sw::WRONG_LENGTH);
        }
        Ok(Answer::data(super::auth_response(&command.data), sw::OK))
    }

    fn external_authenticate(&mut self, command: &Command) -> Outcome<u16> {
        Card::auth_parameters(command)?;
        let challenge = self.volatile.challenge.take().ok_or(sw::CONDITIONS)?;
        if command.data == super::auth_response(&challenge) {
            Ok(sw::OK)
        } else {
            Err(sw::AUTH_FAILED)
        }
    }
}

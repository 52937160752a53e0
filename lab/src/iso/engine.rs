//! The card's state and its transport layer: APDU framing, CLA checks, command chaining, the
//! T=0 conventions (61xx, GET RESPONSE, 6Cxx) and the hostile modes that bend them.

use super::apdu::{sw, Command, MAX_DATA, SHORT_MAX};
use super::files::{Access, Body, Files, Node, MF_INDEX};
use super::{Hostile, IsoOptions};

/// The filler byte of hostile answers.
pub(super) const FILLER: u8 = 0xEE;

/// A code compared by VERIFY and its relatives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Secret {
    pub value: Vec<u8>,
    /// Tries left and the counter's start; `None` for a code without retry counter.
    pub counter: Option<(u8, u8)>,
}

impl Secret {
    fn new(value: &[u8], tries: Option<u8>) -> Secret {
        Secret { value: value.to_vec(), counter: tries.map(|t| (t, t)) }
    }

    pub fn blocked(&self) -> bool {
        matches!(self.counter, Some((0, _)))
    }

    /// The status word that reports the counter: `63 Cx`, or `63 00` without counter.
    pub fn tries_sw(&self) -> u16 {
        self.counter.map_or(sw::AUTH_FAILED, |(left, _)| sw::tries(left))
    }

    /// Compares `presented`: a match restores the counter, a mismatch counts down.
    pub fn check(&mut self, presented: &[u8]) -> Result<(), u16> {
        if self.blocked() {
            return Err(sw::BLOCKED);
        }
        if presented == self.value.as_slice() {
            self.unblock();
            return Ok(());
        }
        if let Some((left, _)) = &mut self.counter {
            *left -= 1;
        }
        Err(self.tries_sw())
    }

    pub fn unblock(&mut self) {
        if let Some((left, start)) = &mut self.counter {
            *left = *start;
        }
    }
}

/// Response data waiting for GET RESPONSE, and the status word that ends it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    data: Vec<u8>,
    at: usize,
    sw: u16,
}

/// The parts of a command chain received so far.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Chain {
    header: (u8, u8, u8),
    data: Vec<u8>,
}

/// What a power-on clears.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Volatile {
    pub df: usize,
    pub ef: Option<usize>,
    /// Per code of [`Card::codes`].
    pub verified: [bool; 2],
    pending: Option<Pending>,
    chain: Option<Chain>,
    pub challenge: Option<Vec<u8>>,
}

/// A command's outcome before the transport shapes it: data and status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Answer {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl Answer {
    pub fn status(sw: u16) -> Answer {
        Answer { data: Vec::new(), sw }
    }

    pub fn data(data: Vec<u8>, sw: u16) -> Answer {
        Answer { data, sw }
    }
}

impl From<u16> for Answer {
    fn from(sw: u16) -> Answer {
        Answer::status(sw)
    }
}

fn with_sw(mut data: Vec<u8>, sw: u16) -> Vec<u8> {
    data.extend_from_slice(&sw.to_be_bytes());
    data
}

pub(super) struct Card {
    pub options: IsoOptions,
    hostile: Hostile,
    /// LongChain: bytes handed out; LyingTriesLeft: wrong codes presented.
    pub hostile_count: usize,
    commands: u64,
    pub files: Files,
    /// [`super::PIN_REF`], then [`super::PIN2_REF`].
    pub codes: [Secret; 2],
    pub puk: Secret,
    pub volatile: Volatile,
}

impl Card {
    pub fn new(options: IsoOptions) -> Card {
        Card {
            options,
            hostile: Hostile::None,
            hostile_count: 0,
            commands: 0,
            files: factory_files(options),
            codes: [Secret::new(super::PIN, Some(super::PIN_TRIES)), Secret::new(super::PIN2, None)],
            puk: Secret::new(super::PUK, Some(super::PUK_TRIES)),
            volatile: Volatile::default(),
        }
    }

    pub fn reset(&mut self) {
        *self = Card { commands: self.commands, ..Card::new(self.options) };
    }

    pub fn power(&mut self) {
        self.volatile = Volatile::default();
    }

    pub fn set_hostile(&mut self, mode: Hostile) {
        self.hostile = mode;
        self.hostile_count = 0;
    }

    pub fn hostile(&self) -> Hostile {
        self.hostile
    }

    pub fn commands_received(&self) -> u64 {
        self.commands
    }

    pub fn transparent(&self, path: &[u16]) -> Option<Vec<u8>> {
        let index = self.files.walk(MF_INDEX, path)?;
        match &self.files.node(index).body {
            Body::Transparent(bytes) => Some(bytes.clone()),
            _ => None,
        }
    }

    /// The response APDU to `apdu`, status word included (except in [`Hostile::OneByteAnswer`]).
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.commands += 1;
        if self.hostile == Hostile::OneByteAnswer {
            return vec![0x90];
        }
        // The proprietary class belongs to the default applet (ECHO, READ), 0xFF is invalid.
        if apdu.first().is_some_and(|&cla| cla & 0x80 != 0 && cla != 0xFF) {
            return crate::applet::default_response(apdu);
        }
        let Some(command) = Command::parse(apdu) else {
            return with_sw(Vec::new(), sw::WRONG_LENGTH);
        };
        if command.extended && !self.options.extended_length() {
            return with_sw(Vec::new(), sw::WRONG_LENGTH);
        }
        // A card with a smaller buffer, as its EF.ATR says.
        if let Some(limit) = self.options.apdu_limit() {
            if apdu.len() > limit || command.ne.is_some_and(|ne| ne > limit - 2) {
                return with_sw(Vec::new(), sw::WRONG_LENGTH);
            }
        }
        if let Err(status) = check_class(command.cla) {
            return with_sw(Vec::new(), status);
        }
        if let Some(response) = self.hostile_transport(&command) {
            return response;
        }
        if command.ins == 0xC0 {
            return self.get_response(&command);
        }
        self.volatile.pending = None;
        let mut command = match self.chain(command) {
            Ok(command) => command,
            Err(status) => return with_sw(Vec::new(), status),
        };
        // A T=0 transport sends a case-4 command without its Le (ISO/IEC 7816-3, 12.2.4): the
        // card answers it as for the largest short Ne, through GET RESPONSE.
        if self.options.t0 && command.ne.is_none() && !command.data.is_empty() {
            command.ne = Some(SHORT_MAX);
        }
        let answer = self.execute(&command);
        if self.hostile == Hostile::OverlongRead
            && matches!(command.ins, 0xB0 | 0xB1)
            && !answer.data.is_empty()
        {
            let mut data = answer.data;
            let want = command.ne.unwrap_or(0).saturating_add(16).min(super::MAX_RESPONSE_DATA);
            data.resize(want.max(data.len()), FILLER);
            return with_sw(data, sw::OK);
        }
        let ef_atr_status = match self.hostile {
            Hostile::EfAtrWarning => Some(sw::END_REACHED),
            Hostile::EfAtrFailure => Some(sw::MEMORY_FAILURE),
            _ => None,
        };
        if let Some(status) = ef_atr_status {
            let current = self.volatile.ef.map(|ef| self.files.node(ef).id);
            if command.ins == 0xB0 && answer.sw == sw::OK && current == Some(super::EF_ATR) {
                return with_sw(answer.data, status);
            }
        }
        self.deliver(&command, answer)
    }

    /// The hostile modes that answer before the command is looked at.
    fn hostile_transport(&mut self, command: &Command) -> Option<Vec<u8>> {
        let get_response = command.ins == 0xC0;
        let status = match self.hostile {
            Hostile::EndlessGetResponse | Hostile::LongChain if !get_response => sw::more(SHORT_MAX),
            Hostile::EndlessGetResponse | Hostile::LongChain => {
                let n = command.ne.unwrap_or(SHORT_MAX).min(SHORT_MAX);
                let endless = self.hostile == Hostile::EndlessGetResponse;
                let left =
                    if endless { n } else { super::LONG_CHAIN_BYTES.saturating_sub(self.hostile_count) };
                let n = n.min(left);
                self.hostile_count += n;
                let done = !endless && self.hostile_count >= super::LONG_CHAIN_BYTES;
                return Some(with_sw(vec![FILLER; n], if done { sw::OK } else { sw::more(SHORT_MAX) }));
            }
            Hostile::EndlessWrongLe => {
                let le = command.ne.map_or(0, |ne| (ne & 0xFF) as u8);
                sw::exact_le(usize::from(le.wrapping_add(1)))
            }
            Hostile::EmptySuccess if command.ne.is_some() => sw::OK,
            Hostile::Plain if command.ins == 0xA4 && matches!(command.p1, 0x08 | 0x09) => sw::WRONG_P1P2,
            Hostile::Plain if matches!(command.ins, 0xB1 | 0xD7) => sw::NO_INS,
            _ => return None,
        };
        Some(with_sw(Vec::new(), status))
    }

    /// GET RESPONSE: the next part of the pending answer.
    fn get_response(&mut self, command: &Command) -> Vec<u8> {
        let t0 = self.options.t0;
        let Some(pending) = self.volatile.pending.as_mut() else {
            return with_sw(Vec::new(), sw::CONDITIONS);
        };
        if command.p1p2() != 0 || !command.data.is_empty() {
            return with_sw(Vec::new(), sw::WRONG_P1P2);
        }
        let Some(ne) = command.ne else {
            return with_sw(Vec::new(), sw::WRONG_LENGTH);
        };
        let remaining = pending.data.len() - pending.at;
        if t0 && ne > remaining {
            return with_sw(Vec::new(), sw::exact_le(remaining));
        }
        let n = ne.min(remaining);
        let part = pending.data[pending.at..pending.at + n].to_vec();
        pending.at += n;
        let left = pending.data.len() - pending.at;
        if left > 0 {
            return with_sw(part, sw::more(left));
        }
        let status = pending.sw;
        self.volatile.pending = None;
        with_sw(part, status)
    }

    /// Command chaining: a part (CLA bit 0x10) is kept and answered 90 00 (as `Err`); the last
    /// part comes back with the whole chain's data.
    fn chain(&mut self, mut command: Command) -> Result<Command, u16> {
        let header = (command.ins, command.p1, command.p2);
        let chain = self.volatile.chain.take();
        if command.cla & 0x10 != 0 {
            if !self.options.chaining {
                return Err(sw::NO_CHAINING);
            }
            let mut chain = chain.unwrap_or(Chain { header, data: Vec::new() });
            if chain.header != header {
                return Err(sw::LAST_OF_CHAIN_EXPECTED);
            }
            chain.data.extend_from_slice(&command.data);
            if chain.data.len() > MAX_DATA {
                return Err(sw::WRONG_LENGTH);
            }
            self.volatile.chain = Some(chain);
            return Err(sw::OK);
        }
        if let Some(mut chain) = chain {
            if chain.header != header {
                return Err(sw::LAST_OF_CHAIN_EXPECTED);
            }
            chain.data.extend_from_slice(&command.data);
            if chain.data.len() > MAX_DATA {
                return Err(sw::WRONG_LENGTH);
            }
            command.data = chain.data;
        }
        Ok(command)
    }

    /// Shapes a command's answer as the protocol wants it.
    fn deliver(&mut self, command: &Command, answer: Answer) -> Vec<u8> {
        let Answer { data, sw: status } = answer;
        if data.is_empty() {
            return with_sw(data, status);
        }
        if let Some(ne) = command.ne {
            if data.len() > ne {
                let status =
                    if data.len() <= SHORT_MAX { sw::exact_le(data.len()) } else { sw::WRONG_LENGTH };
                return with_sw(Vec::new(), status);
            }
        }
        if !self.options.t0 {
            return with_sw(data, status);
        }
        match command.ne {
            // Case 2: the Le must name exactly what is there.
            Some(ne) if command.data.is_empty() => {
                if data.len() == ne {
                    with_sw(data, status)
                } else {
                    with_sw(Vec::new(), sw::exact_le(data.len()))
                }
            }
            // Case 4 (a T=0 transport never carries its Le), or data the command did not ask for.
            _ => {
                let more = sw::more(data.len());
                self.volatile.pending = Some(Pending { data, at: 0, sw: status });
                with_sw(Vec::new(), more)
            }
        }
    }

    /// The code with reference `reference` (its index in `codes`).
    pub fn code_index(reference: u8) -> Option<usize> {
        [super::PIN_REF, super::PIN2_REF].iter().position(|&r| r == reference)
    }
}

/// Only the basic logical channel, no secure messaging; bit 0x10 is chaining.
fn check_class(cla: u8) -> Result<(), u16> {
    match cla & !0x10 {
        0x00 => Ok(()),
        c if c & 0xA0 != 0 => Err(sw::NO_CLA),
        c if c & 0x40 != 0 || c & 0x03 != 0 => Err(sw::NO_CHANNEL),
        _ => Err(sw::NO_SECURE_MESSAGING),
    }
}

/// The factory file system.
fn factory_files(options: IsoOptions) -> Files {
    use super::*;
    let mut files = Files::new();
    let transparent = |id, sfi, bytes: &[u8]| Node::new(id, sfi, Body::Transparent(bytes.to_vec()));
    files.add(MF_INDEX, transparent(EF_ATR, None, &super::ef_atr(options)));
    let df = files.add(MF_INDEX, Node::new(DF_ID, None, Body::Df { name: Some(DF_NAME.to_vec()) }));
    files.add(df, transparent(EF_SMALL, Some(SFI_SMALL), SMALL_CONTENT));
    files.add(df, transparent(EF_BIG, Some(SFI_BIG), &big_content()));
    let records = (1..=RECORD_COUNT as u8).map(|n| initial_record(n).to_vec()).collect();
    files.add(
        df,
        Node::new(
            EF_RECORDS,
            Some(SFI_RECORDS),
            Body::Records { len: RECORD_LEN, capacity: RECORD_CAPACITY, records },
        ),
    );
    files.add(
        df,
        Node {
            read: Access::Pin,
            update: Access::Pin,
            ..transparent(EF_SECRET, Some(SFI_SECRET), SECRET_CONTENT)
        },
    );
    files.add(
        df,
        Node { update: Access::Never, ..transparent(EF_READ_ONLY, Some(SFI_READ_ONLY), READ_ONLY_CONTENT) },
    );
    let sub = files.add(df, Node::new(DF_SUB, None, Body::Df { name: None }));
    files.add(sub, transparent(EF_SUB, None, SUB_CONTENT));
    files
}

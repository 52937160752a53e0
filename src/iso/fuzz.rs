//! A seeded property test over everything that reads a card's or a caller's bytes: the BER-TLV
//! reader, the FCP and EF.ATR parsers, the command decoder and the transport's answer handling (against a
//! card that answers at random). No input may panic, read outside its slice or loop without
//! bound, and what decodes must encode back to the same bytes.
//!
//! `SCM_FUZZ_INPUTS` sets how many inputs each target gets (default 100 000, a few seconds in a
//! debug build); `SCM_FUZZ_SEED` replays a run. A failure prints the seed and the input.

use super::apdu::Command;
use super::ef_atr;
use super::tlv::{self, Fcp, Reader};
use super::transport::{self, Exchange, Plan};
use crate::scard::{self, Result};

/// xorshift64*: small, seedable, good enough to spread inputs; the library's one generator for
/// its seeded property tests.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

fn inputs() -> usize {
    std::env::var("SCM_FUZZ_INPUTS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}

fn seed() -> u64 {
    std::env::var("SCM_FUZZ_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(0x5CA2_D0A6_15A7_7816)
}

/// Well-formed templates to mutate: most random bytes fail at the first tag, these reach deep.
const SEEDS: [&[u8]; 5] = [
    &[
        0x62, 0x17, 0x80, 0x02, 0x9C, 0x40, 0x82, 0x05, 0x02, 0x41, 0x00, 0x20, 0x0A, 0x83, 0x02, 0x2F, 0x01,
        0x88, 0x01, 0x08, 0x8A, 0x01, 0x05, 0xA5, 0x00,
    ],
    &[0x6F, 0x0C, 0x82, 0x01, 0x38, 0x83, 0x02, 0x3F, 0x00, 0x84, 0x03, 0xA0, 0x00, 0x01],
    &[0x6F, 0x0A, 0x62, 0x08, 0x82, 0x01, 0x01, 0x81, 0x83, 0x02, 0x50, 0x01],
    &[0xA5, 0x08, 0xA5, 0x06, 0xA5, 0x04, 0x5F, 0x2D, 0x01, 0x65],
    // EF.ATR: card capabilities and extended length information.
    &[0x47, 0x03, 0xB6, 0x01, 0xE0, 0x7F, 0x66, 0x08, 0x02, 0x02, 0x10, 0x00, 0x02, 0x02, 0x10, 0x00],
];

/// A random input: fresh bytes, or a seed template with a few bytes changed, inserted or cut.
fn tlv_input(rng: &mut Rng) -> Vec<u8> {
    if rng.below(4) == 0 {
        let len = rng.below(48);
        return rng.bytes(len);
    }
    let mut input = SEEDS[rng.below(SEEDS.len())].to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(input.len() + 1);
        match rng.below(4) {
            0 if at < input.len() => input[at] = rng.byte(),
            1 => input.insert(at, rng.byte()),
            2 if at < input.len() => drop(input.remove(at)),
            _ => input.truncate(at),
        }
    }
    input
}

/// Whether `part` lies inside `whole`.
fn within(part: &[u8], whole: &[u8]) -> bool {
    let range = whole.as_ptr_range();
    part.is_empty() || (range.start <= part.as_ptr() && part.as_ptr_range().end <= range.end)
}

#[test]
fn tlv_and_fcp_parsers_take_any_input() {
    let (seed, n) = (seed(), inputs());
    let mut rng = Rng(seed);
    let started = std::time::Instant::now();
    let (mut parsed, mut walked, mut announced) = (0, 0, 0);
    for _ in 0..n {
        let input = tlv_input(&mut rng);
        let context = || format!("seed {seed:#x}, input {input:02X?}");
        let mut consumed = 0;
        for object in Reader::new(&input) {
            let Ok(object) = object else { break };
            assert!(within(object.value, &input), "{}", context());
            consumed += object.value.len();
            walked += 1;
        }
        assert!(consumed <= input.len(), "{}", context());
        let _ = tlv::well_formed(&input);
        if let Ok(fcp) = Fcp::parse(&input) {
            parsed += 1;
            assert!(fcp.df_name.map_or(true, |name| within(name, &input)), "{}", context());
            assert!(fcp.short_id.map_or(true, |id| (1..=30).contains(&id)), "{}", context());
        }
        for limits in [false, true].into_iter().filter_map(|atr_promises| ef_atr::parse(&input, atr_promises))
        {
            announced += 1;
            for size in [limits.command_apdu, limits.response_apdu] {
                assert!((4 + 3 + 256 + 2..=0xFFFF).contains(&size), "{}", context());
            }
        }
    }
    eprintln!(
        "tlv/fcp/EF.ATR: {n} inputs ({walked} objects, {parsed} FCPs parsed, {announced} EF.ATR announcing extended length) in {:?}",
        started.elapsed()
    );
}

#[test]
fn commands_decode_only_what_encodes_back() {
    let (seed, n) = (seed(), inputs());
    let mut rng = Rng(seed ^ 1);
    let started = std::time::Instant::now();
    let mut decoded = 0;
    for _ in 0..n {
        // Lengths around the short/extended boundaries, with a plausible length byte or two.
        let len = match rng.below(3) {
            0 => rng.below(12),
            1 => 4 + rng.below(270),
            _ => 4 + rng.below(600),
        };
        let mut input = rng.bytes(len);
        if input.len() > 6 && rng.below(2) == 0 {
            let body = input.len() - 5;
            input[4] = if body <= 255 { body as u8 } else { 0 };
        }
        if let Ok((command, extended)) = Command::parse(&input) {
            decoded += 1;
            let mut encoded = Vec::new();
            command.encode(extended, &mut encoded).expect("a decoded command encodes");
            assert_eq!(encoded, input, "seed {seed:#x}");
        }
    }
    eprintln!("apdu: {n} inputs ({decoded} decoded) in {:?}", started.elapsed());
}

/// A card answering at random, mostly with the status words the transport acts on.
struct RandomCard {
    rng: Rng,
    exchanges: usize,
}

impl Exchange for RandomCard {
    fn exchange(&mut self, _command: &[u8], answer: &mut [u8]) -> Result<usize> {
        self.exchanges += 1;
        let rng = &mut self.rng;
        let len = match rng.below(8) {
            0 => rng.below(2),
            1 => 2 + rng.below(300),
            2 | 3 => 2 + rng.below(20),
            _ => 2,
        };
        let mut reply = rng.bytes(len);
        if len >= 2 {
            let sw1 = [0x61, 0x61, 0x61, 0x6C, 0x90, 0x62, 0x63, 0x6A][rng.below(8)];
            reply[len - 2] = sw1;
            if sw1 == 0x90 {
                reply[len - 1] = 0;
            }
        }
        answer[..len].copy_from_slice(&reply);
        Ok(len)
    }
}

#[test]
fn the_transport_ends_on_any_sequence_of_answers() {
    let (seed, n) = (seed(), inputs() / 10);
    let mut rng = Rng(seed ^ 2);
    let started = std::time::Instant::now();
    let (mut answered, mut broken, mut exchanges) = (0, 0, 0);
    let mut answer = vec![0; scard::MAX_APDU];
    let data = vec![0x5A; 700];
    for _ in 0..n {
        let command = Command {
            data: &data[..[0, 10, 255, 256, 700][rng.below(5)]],
            ne: [0, 1, 256, 257, 65536][rng.below(5)],
            ..Command::new(rng.byte() & 0x7F, 0xB0, 0, 0)
        };
        let plan = Plan { extended: rng.below(2) == 0, t0: rng.below(2) == 0 };
        let flags = match rng.below(4) {
            0 => rng.below(8) as u32,
            _ => transport::ALL,
        };
        let mut card = RandomCard { rng: Rng(rng.next() | 1), exchanges: 0 };
        let mut response = Vec::new();
        match transport::run(&mut card, &command, plan, flags, &mut Vec::new(), &mut answer, &mut response) {
            Ok(_) => answered += 1,
            Err(_) => broken += 1,
        }
        assert!(response.len() <= transport::MAX_RESPONSE, "seed {seed:#x}");
        let bound = command.data.len().div_ceil(255) + transport::MAX_ROUNDS + transport::MAX_LE_FIXES + 1;
        assert!(card.exchanges <= bound, "seed {seed:#x}: {} exchanges", card.exchanges);
        exchanges += card.exchanges;
    }
    eprintln!(
        "transport: {n} commands ({answered} answered, {broken} refused, {exchanges} exchanges) in {:?}",
        started.elapsed()
    );
}

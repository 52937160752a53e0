//! `scm_file_read` of the lab card's 40 000-byte file against the same file read by a
//! hand-written loop of `scm_transmit` READ BINARY commands on the same manager, interleaved
//! call by call: on a card without extended length (the same commands on both sides: what the
//! library costs) and on one with it (where the library needs fewer commands).
//!
//! `cargo bench --bench file [-- --rounds N]`; `.ci/bench` runs it and checks its goals.
// The lab (a private pcscd) runs on Linux only: elsewhere the benchmark is empty, so that
// `cargo clippy --all-targets` passes there (the binary has nothing to run, hence no `main`).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

mod common;

use std::ffi::CString;
use std::ptr;
use std::time::Duration;

use common::*;
use scardmanage::*;
use scardmanage_lab::iso::{self, IsoControl, IsoOptions};
use scardmanage_lab::{wait_card, Lab, SOCKET_ENV};

/// The file's path from the MF, as the library takes it and as SELECT by path carries it.
const PATH: &str = "3F00/5000/5002";
const SELECT: [u8; 9] = [0x00, 0xA4, 0x08, 0x0C, 0x04, 0x50, 0x00, 0x50, 0x02];
/// The largest offset READ BINARY's even instruction carries in P1-P2.
const EVEN_MAX_OFFSET: usize = 0x7FFF;

/// One card of the lab with a manager attached, a file access object with the file open, and
/// the buffers both sides read into.
struct Bench {
    m: *mut scm_manage,
    f: *mut scm_file_access,
    file: u32,
    iso: IsoControl,
    data: Vec<u8>,
    response: Vec<u8>,
}

impl Bench {
    fn new(reader: &str, iso: IsoControl) -> Bench {
        let name = CString::new(reader).unwrap();
        let path = CString::new(PATH).unwrap();
        let (mut m, mut f, mut file) = (ptr::null_mut(), ptr::null_mut(), 0);
        // SAFETY: valid pointers; the tokens are released in Drop.
        unsafe {
            assert_eq!(scm_create(&mut m), SCM_S_OK);
            assert_eq!(scm_attach_by_ifd(m, name.as_ptr()), SCM_S_OK);
            assert_eq!(scm_create_file_access(m, &mut f), SCM_S_OK);
            assert_eq!(scm_file_open(f, SCM_REF_BY_ID, path.as_ptr(), &mut file), SCM_S_OK);
        }
        Bench { m, f, file, iso, data: vec![0; iso::BIG_SIZE], response: vec![0; SCM_MAX_APDU_SIZE] }
    }

    /// The library: back to the start, then one call for the whole file.
    #[inline(never)]
    fn library(&mut self) {
        let mut len = self.data.len();
        // SAFETY: the buffer holds `len` bytes; `position` may be NULL.
        unsafe {
            assert_eq!(
                scm_file_seek(self.f, self.file, SCM_SEEK_FROM_BEGINNING, 0, ptr::null_mut()),
                SCM_S_OK
            );
            assert_eq!(scm_file_read(self.f, self.file, self.data.as_mut_ptr(), &mut len, 0), SCM_S_OK);
        }
        assert_eq!(len, iso::BIG_SIZE);
    }

    /// What a program without the library writes: SELECT, then READ BINARY with Le 00 (256
    /// bytes) until the file ends, the even instruction while the offset fits P1-P2 and the odd
    /// one (offset object 54, answer in a 53 object) past it.
    #[inline(never)]
    fn hand_loop(&mut self) {
        self.transmit(&SELECT);
        let mut offset = 0;
        while offset < iso::BIG_SIZE {
            let got = if offset <= EVEN_MAX_OFFSET {
                let n = self.transmit(&[0x00, 0xB0, (offset >> 8) as u8, offset as u8, 0x00]);
                self.data[offset..offset + n].copy_from_slice(&self.response[..n]);
                n
            } else {
                let command =
                    [0x00, 0xB1, 0x00, 0x00, 0x04, 0x54, 0x02, (offset >> 8) as u8, offset as u8, 0x00];
                let n = self.transmit(&command);
                // 53 L or 53 81 L, then the bytes.
                let (skip, len) = match self.response[1] {
                    0x81 => (3, usize::from(self.response[2])),
                    len => (2, usize::from(len)),
                };
                assert_eq!(skip + len, n);
                self.data[offset..offset + len].copy_from_slice(&self.response[skip..n]);
                len
            };
            assert!(got > 0);
            offset += got;
        }
        assert_eq!(offset, iso::BIG_SIZE);
    }

    /// One `scm_transmit`; the answer's data length (the status word, 9000 or 6282, checked).
    fn transmit(&mut self, command: &[u8]) -> usize {
        let mut len = self.response.len();
        // SAFETY: the buffers hold the lengths given.
        let hr = unsafe {
            scm_transmit(self.m, command.as_ptr(), command.len(), self.response.as_mut_ptr(), &mut len)
        };
        assert_eq!(hr, SCM_S_OK);
        let sw = u16::from_be_bytes([self.response[len - 2], self.response[len - 1]]);
        assert!(sw == 0x9000 || sw == 0x6282, "{sw:04X}");
        len - 2
    }

    /// Commands the card received for one run of `f`.
    fn commands(&mut self, f: fn(&mut Bench)) -> u64 {
        let before = self.iso.commands_received();
        f(self);
        self.iso.commands_received() - before
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        // SAFETY: our live tokens.
        unsafe {
            scm_file_access_release(self.f);
            scm_release(self.m);
        }
    }
}

struct Figures {
    ratio: f64,
    library_commands: u64,
    hand_commands: u64,
}

fn measure(label: &str, bench: &mut Bench, rounds: usize) -> Figures {
    let library_commands = bench.commands(Bench::library);
    assert!(bench.data == iso::big_content(), "{label}: the library read the file bit-exact");
    let hand_commands = bench.commands(Bench::hand_loop);
    assert!(bench.data == iso::big_content(), "{label}: the hand loop read the file bit-exact");
    let bench = std::cell::RefCell::new(bench);
    let results = interleave(
        rounds,
        1,
        &mut [&mut || bench.borrow_mut().library(), &mut || bench.borrow_mut().hand_loop()],
    );
    let (library, hand) = (results[0].median(), results[1].median());
    let difference = paired_difference(&results[0], &results[1]);
    // The round-by-round difference is what the library adds; the medians of the two sides
    // move together with the load (pcscd's threads), so their own ratio is the noisier figure.
    let ratio = (hand + difference.median()) / hand;
    row(&[
        label.into(),
        human(library),
        human(hand),
        format!("{:.3}", library / hand),
        format!(
            "{} ({} … {})",
            human(difference.median()),
            human(difference.quantile(0.25)),
            human(difference.quantile(0.75))
        ),
        format!("{ratio:.3}"),
        library_commands.to_string(),
        hand_commands.to_string(),
    ]);
    Figures { ratio, library_commands, hand_commands }
}

fn main() {
    let rounds = arg("--rounds", 200);
    let lab = Lab::start(1).expect("starting the PC/SC lab (needs root and the lab's packages)");
    std::env::set_var(SOCKET_ENV, lab.socket_path());
    let mut benches = Vec::new();
    for (reader, options) in lab.readers().iter().zip([IsoOptions::SHORT, IsoOptions::default()]) {
        let (card, control) = iso::card(options);
        card.insert(reader.port);
        assert!(
            wait_card(&reader.name, true, Duration::from_secs(10)),
            "the card shows up in {}",
            reader.name
        );
        benches.push((card, Bench::new(&reader.name, control)));
    }

    println!(
        "### File read: scm_file_read against a hand-written scm_transmit loop ({rounds} interleaved rounds)"
    );
    println!();
    header(&[
        "40 000-byte file, one read from offset 0",
        "scm_file_read",
        "hand loop of scm_transmit",
        "ratio of medians",
        "library − hand loop, round by round (IQR)",
        "ratio, round by round",
        "commands, library",
        "commands, hand loop",
    ]);
    let short = measure(
        "card without extended length (both: SELECT + 157 short READ BINARY)",
        &mut benches[0].1,
        rounds,
    );
    let extended = measure("card with extended length (hand loop: short APDUs)", &mut benches[1].1, rounds);

    println!();
    println!("### Goals checked in this run (file read)");
    println!();
    header(&["goal", "measured", "bound", "met?"]);
    goal(
        "file-read-ratio",
        format!("{:.3} round by round (same {} commands on both sides)", short.ratio, short.library_commands),
        "≤ 1.02 × the hand loop".into(),
        short.ratio <= 1.02 && short.library_commands == short.hand_commands,
    );
    goal(
        "file-read-fewer-commands-with-extended-length",
        format!(
            "{} commands against {} ({:.3} of the hand loop's time)",
            extended.library_commands, extended.hand_commands, extended.ratio
        ),
        "fewer than the hand loop".into(),
        extended.library_commands < extended.hand_commands,
    );
}

//! Every card-touching call of the library against the raw PC/SC call it wraps, interleaved
//! call by call on the same card and reader of a private lab, plus the virtual card timed alone.
//!
//! `cargo bench --bench abi [-- --rounds N]`; `-- --callgrind` runs only fixed loops, for
//! `valgrind --tool=callgrind` to count the instructions of each (see `.ci/bench`).
// The lab (a private pcscd) runs on Linux only: elsewhere the benchmark is empty, so that
// `cargo clippy --all-targets` passes there (the binary has nothing to run, hence no `main`).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::CString;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ptr;
use std::time::{Duration, Instant};

use common::*;
use pcsc::ffi;
use scardmanage::*;
use scardmanage_lab::{wait_card, Lab, VirtualCard, SOCKET_ENV};

/// Counts the Rust heap allocations made by each thread (the library's included: it is linked
/// in), to show that the status and transmit paths make none. Per thread, because the virtual
/// card serves from a thread of this process and allocates for every answer.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_allocation() {
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Rust heap allocations per call of `f` on this thread, after one warm-up call.
fn allocations_per_call(calls: usize, mut f: impl FnMut()) -> f64 {
    f();
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..calls {
        f();
    }
    (ALLOCATIONS.with(Cell::get) - before) as f64 / calls as f64
}

const SHORT: &[u8] = &[0x80, 0x10, 0x00, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04];
const READ_255: &[u8] = &[0x80, 0x20, 0x00, 0xFF, 0x00];
const READ_4096: &[u8] = &[0x80, 0x20, 0x10, 0x00, 0x00, 0x10, 0x00];
const READ_65533: &[u8] = &[0x80, 0x20, 0xFF, 0xFD, 0x00, 0xFF, 0xFD];

/// The library's side: one manager attached to the lab reader.
struct Library {
    m: *mut scm_manage,
    response: Vec<u8>,
}

impl Library {
    fn attached(reader: &CString) -> Library {
        let mut m = ptr::null_mut();
        // SAFETY: valid pointers; the token is released in Drop.
        unsafe {
            assert_eq!(scm_create(&mut m), SCM_S_OK);
            assert_eq!(scm_attach_by_ifd(m, reader.as_ptr()), SCM_S_OK);
        }
        Library { m, response: vec![0; SCM_MAX_APDU_SIZE] }
    }

    #[inline(never)]
    fn status(&self) {
        let (mut state, mut protocol) = (0, 0);
        // SAFETY: valid out-pointers.
        let hr = unsafe { scm_status(self.m, &mut state, &mut protocol) };
        assert_eq!((hr, state), (SCM_S_OK, SCM_STATE_SPECIFIC));
    }

    /// `capacity` below `SCM_MAX_APDU_SIZE` takes the library's scratch-buffer path.
    #[inline(never)]
    fn transmit(&mut self, command: &[u8], capacity: usize) -> usize {
        let mut len = capacity;
        // SAFETY: the buffer holds at least `capacity` bytes.
        let hr = unsafe {
            scm_transmit(self.m, command.as_ptr(), command.len(), self.response.as_mut_ptr(), &mut len)
        };
        assert_eq!(hr, SCM_S_OK);
        len
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: our live token.
        unsafe { scm_release(self.m) };
    }
}

/// The baseline: the same calls made straight to PC/SC, on the library's own card handle (from
/// `scm_get_handle`). Same handle, same context, same socket and the same pcscd thread behind
/// it: a connection of its own would put the baseline on another pcscd thread, which the
/// scheduler may place better or worse on this 2-core machine, and that shows up as tens of µs
/// of difference that neither side caused.
struct Raw {
    handle: ffi::SCARDHANDLE,
    response: Vec<u8>,
}

impl Raw {
    fn borrowing(library: &Library) -> Raw {
        let mut handle = 0;
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { scm_get_handle(library.m, &mut handle) }, SCM_S_OK);
        Raw { handle: handle as ffi::SCARDHANDLE, response: vec![0; ffi::MAX_BUFFER_SIZE_EXTENDED] }
    }

    /// `SCardStatus` as the library calls it: NULL name and ATR buffers.
    #[inline(never)]
    fn status(&self) {
        let (mut reader_len, mut state, mut protocol, mut atr_len) = (0, 0, 0, 0);
        // SAFETY: NULL buffers ask for lengths; every pointer is valid.
        let rv = unsafe {
            ffi::SCardStatus(
                self.handle,
                ptr::null_mut(),
                &mut reader_len,
                &mut state,
                &mut protocol,
                ptr::null_mut(),
                &mut atr_len,
            )
        };
        assert_eq!(rv, 0);
        black_box((state, protocol));
    }

    #[inline(never)]
    fn transmit(&mut self, command: &[u8]) -> usize {
        let mut len = self.response.len() as ffi::DWORD;
        // SAFETY: the buffers are valid for the lengths given.
        let rv = unsafe {
            ffi::SCardTransmit(
                self.handle,
                &ffi::g_rgSCardT1Pci,
                command.as_ptr(),
                command.len() as ffi::DWORD,
                ptr::null_mut(),
                self.response.as_mut_ptr(),
                &mut len,
            )
        };
        assert_eq!(rv, 0);
        len as usize
    }
}

/// The virtual card alone: a stand-in reader (a TCP listener) sends it APDUs in vpcd framing,
/// with no pcscd and no PC/SC client in the way.
struct CardAlone {
    _card: VirtualCard,
    reader_side: TcpStream,
    buffer: Vec<u8>,
}

impl CardAlone {
    fn new() -> CardAlone {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let card = VirtualCard::with_default_applet();
        card.insert(listener.local_addr().unwrap().port());
        let (reader_side, _) = listener.accept().unwrap();
        reader_side.set_nodelay(true).unwrap();
        CardAlone { _card: card, reader_side, buffer: vec![0; 1 << 16] }
    }

    fn exchange(&mut self, command: &[u8]) -> usize {
        let mut frame = (command.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(command);
        self.reader_side.write_all(&frame).unwrap();
        let mut header = [0; 2];
        self.reader_side.read_exact(&mut header).unwrap();
        let len = usize::from(u16::from_be_bytes(header));
        self.reader_side.read_exact(&mut self.buffer[..len]).unwrap();
        len
    }
}

/// A row's medians: the library's call, the raw call, and the library's cost (the median of the
/// round-by-round differences).
struct Figures {
    raw: f64,
    cost: f64,
}

fn report(name: &str, library: &Samples, baseline: &Samples, card: Option<&Samples>) -> Figures {
    let lib = library.median();
    let raw = baseline.median();
    let difference = paired_difference(library, baseline);
    row(&[
        name.to_string(),
        human(lib),
        human(raw),
        format!("{:.3}", lib / raw),
        format!(
            "{} ({} … {})",
            human(difference.median()),
            human(difference.quantile(0.25)),
            human(difference.quantile(0.75))
        ),
        card.map_or("—".into(), |c| format!("{} ({:.0}%)", human(c.median()), 100.0 * c.median() / raw)),
    ]);
    Figures { raw, cost: difference.median() }
}

/// An attach + detach against its raw baseline, like with like: the library reuses the PC/SC
/// context it keeps, so the raw side keeps one too and makes one SCardConnect and one
/// SCardDisconnect on it. (The contexts differ, hence so may the pcscd threads behind them: the
/// callgrind row counts the library's own work without that noise.)
fn attach_detach(reader: &CString, rounds: usize) {
    let mut m = ptr::null_mut();
    let mut context = 0;
    // SAFETY: valid pointers; everything is released below.
    unsafe {
        assert_eq!(scm_create(&mut m), SCM_S_OK);
        assert_eq!(
            ffi::SCardEstablishContext(ffi::SCARD_SCOPE_USER, ptr::null(), ptr::null(), &mut context),
            0
        );
    }
    let results = interleave(
        rounds,
        1,
        &mut [
            // SAFETY: a live token and a NUL-terminated name.
            &mut || unsafe {
                assert_eq!(scm_attach_by_ifd(m, reader.as_ptr()), SCM_S_OK);
                assert_eq!(scm_detach(m), SCM_S_OK);
            },
            &mut || raw_connect_disconnect(context, reader),
        ],
    );
    report(
        "scm_attach_by_ifd + scm_detach vs SCardConnect + SCardDisconnect (both keep their context)",
        &results[0],
        &results[1],
        None,
    );
    // SAFETY: ours, released once.
    unsafe {
        scm_release(m);
        ffi::SCardReleaseContext(context);
    }
}

/// Fixed loops for callgrind: the same number of library and raw calls, in functions whose
/// inclusive instruction counts `callgrind_annotate` reports.
#[inline(never)]
fn callgrind_scm_status(library: &Library, n: usize) {
    for _ in 0..n {
        library.status();
    }
}

#[inline(never)]
fn callgrind_raw_status(raw: &Raw, n: usize) {
    for _ in 0..n {
        raw.status();
    }
}

#[inline(never)]
fn callgrind_scm_transmit(library: &mut Library, n: usize) {
    for _ in 0..n {
        library.transmit(SHORT, SCM_MAX_APDU_SIZE);
    }
}

#[inline(never)]
fn callgrind_scm_transmit_scratch(library: &mut Library, n: usize) {
    for _ in 0..n {
        library.transmit(SHORT, 258);
    }
}

#[inline(never)]
fn callgrind_raw_transmit(raw: &mut Raw, n: usize) {
    for _ in 0..n {
        raw.transmit(SHORT);
    }
}

#[inline(never)]
fn callgrind_scm_attach_detach(m: *mut scm_manage, reader: &CString, n: usize) {
    for _ in 0..n {
        // SAFETY: a live token and a NUL-terminated name.
        unsafe {
            assert_eq!(scm_attach_by_ifd(m, reader.as_ptr()), SCM_S_OK);
            assert_eq!(scm_detach(m), SCM_S_OK);
        }
    }
}

/// The baseline of an attach + detach: one SCardConnect and one SCardDisconnect.
fn raw_connect_disconnect(context: ffi::SCARDCONTEXT, reader: &CString) {
    let (mut handle, mut protocol) = (0, 0);
    // SAFETY: valid pointers; the handle is disconnected at once.
    unsafe {
        let rv = ffi::SCardConnect(
            context,
            reader.as_ptr(),
            ffi::SCARD_SHARE_SHARED,
            ffi::SCARD_PROTOCOL_T0 | ffi::SCARD_PROTOCOL_T1,
            &mut handle,
            &mut protocol,
        );
        assert_eq!(rv, 0);
        assert_eq!(ffi::SCardDisconnect(handle, ffi::SCARD_LEAVE_CARD), 0);
    }
}

#[inline(never)]
fn callgrind_raw_connect_disconnect(context: ffi::SCARDCONTEXT, reader: &CString, n: usize) {
    for _ in 0..n {
        raw_connect_disconnect(context, reader);
    }
}

/// What an attach + detach would add if it established and released a context every time:
/// `.ci/bench` checks that the library's own instructions stay below it.
#[inline(never)]
fn callgrind_raw_establish_release(n: usize) {
    for _ in 0..n {
        let mut context = 0;
        // SAFETY: a valid out-pointer; the context is released at once.
        unsafe {
            assert_eq!(
                ffi::SCardEstablishContext(ffi::SCARD_SCOPE_USER, ptr::null(), ptr::null(), &mut context),
                0
            );
            assert_eq!(ffi::SCardReleaseContext(context), 0);
        }
    }
}

/// BENCHMARKS.md's "own cost under 2 % of PC/SC's floor", where the floor is this run's raw
/// call on the same handle.
fn cost_goal(id: &str, figures: &Figures) {
    goal(
        id,
        format!(
            "{} ({:.2} % of {})",
            human(figures.cost),
            100.0 * figures.cost / figures.raw,
            human(figures.raw)
        ),
        format!("≤ 2 % of the raw call ({})", human(0.02 * figures.raw)),
        figures.cost <= 0.02 * figures.raw,
    );
}

fn main() {
    let rounds = arg("--rounds", 2000);
    let lab = Lab::start(1).expect("starting the PC/SC lab (needs root and the lab's packages)");
    // Before this process's first PC/SC call: libpcsclite reads it once.
    std::env::set_var(SOCKET_ENV, lab.socket_path());
    let reader_name = lab.readers()[0].name.clone();
    let card = VirtualCard::with_default_applet();
    card.insert(lab.readers()[0].port);
    assert!(wait_card(&reader_name, true, Duration::from_secs(10)), "the card shows up in {reader_name}");
    let reader = CString::new(reader_name.clone()).unwrap();
    let mut library = Library::attached(&reader);
    let mut raw = Raw::borrowing(&library);

    if flag("--callgrind") {
        let n = arg("--calls", 2000);
        // Warm both paths first (the scratch buffers, lazy PC/SC state), outside the loops.
        for _ in 0..10 {
            library.transmit(SHORT, 258);
        }
        callgrind_scm_status(&library, n);
        callgrind_raw_status(&raw, n);
        callgrind_scm_transmit(&mut library, n);
        callgrind_scm_transmit_scratch(&mut library, n);
        callgrind_raw_transmit(&mut raw, n);
        let (mut m, mut context) = (ptr::null_mut(), 0);
        // SAFETY: valid out-pointers; both released below.
        unsafe {
            assert_eq!(scm_create(&mut m), SCM_S_OK);
            assert_eq!(
                ffi::SCardEstablishContext(ffi::SCARD_SCOPE_USER, ptr::null(), ptr::null(), &mut context),
                0
            );
        }
        // SAFETY: a live token and a NUL-terminated name. The first attachment establishes the
        // context that the later ones reuse.
        unsafe {
            assert_eq!(scm_attach_by_ifd(m, reader.as_ptr()), SCM_S_OK);
            assert_eq!(scm_detach(m), SCM_S_OK);
        }
        callgrind_scm_attach_detach(m, &reader, n);
        callgrind_raw_connect_disconnect(context, &reader, n);
        callgrind_raw_establish_release(n);
        // SAFETY: ours, released once.
        unsafe {
            scm_release(m);
            ffi::SCardReleaseContext(context);
        }
        return;
    }

    let mut alone = CardAlone::new();
    let timer = interleave(
        1000,
        1000,
        &mut [&mut || {
            black_box(Instant::now());
        }],
    );
    println!("\n### Per call against raw PC/SC (reader {reader_name:?}, default-applet card, T=1)\n");
    println!(
        "{rounds} interleaved rounds, one call of each per round (order shuffled); medians. \
         Library cost = median of the round-by-round differences (interquartile range in brackets). \
         Card alone = the virtual card's own round trip over its socket, no pcscd. Timer overhead: {}.\n",
        human(timer[0].median())
    );
    header(&["call", "library", "raw PC/SC", "ratio", "library cost (IQR)", "card alone (% of raw)"]);

    let status = interleave(rounds, 1, &mut [&mut || library.status(), &mut || raw.status()]);
    let mut costs = vec![("cost-status", report("scm_status vs SCardStatus", &status[0], &status[1], None))];

    for (id, name, command, expected) in [
        ("cost-transmit-short", "scm_transmit vs SCardTransmit, short (4-byte ECHO)", SHORT, 6),
        ("cost-transmit-255", "… 255-byte response", READ_255, 257),
        ("cost-transmit-4096", "… 4096-byte response (extended Le)", READ_4096, 4098),
        ("cost-transmit-65533", "… 65533-byte response (extended Le)", READ_65533, 65535),
    ] {
        let rounds = if expected > 10_000 { rounds / 4 } else { rounds };
        let results = interleave(
            rounds,
            1,
            &mut [
                &mut || assert_eq!(library.transmit(command, SCM_MAX_APDU_SIZE), expected),
                &mut || assert_eq!(raw.transmit(command), expected),
                &mut || assert_eq!(alone.exchange(command), expected),
            ],
        );
        costs.push((id, report(name, &results[0], &results[1], Some(&results[2]))));
    }
    let scratch = interleave(
        rounds,
        1,
        &mut [&mut || assert_eq!(library.transmit(SHORT, 258), 6), &mut || {
            assert_eq!(raw.transmit(SHORT), 6)
        }],
    );
    costs.push((
        "cost-transmit-scratch",
        report("… short, 258-byte caller buffer (scratch path)", &scratch[0], &scratch[1], None),
    ));

    attach_detach(&reader, rounds / 4);

    println!("\n### Rust heap allocations per call (counting allocator, 1000 calls after a warm-up)\n");
    header(&["call", "allocations per call"]);
    let status = allocations_per_call(1000, || library.status());
    row(&["scm_status".into(), format!("{status}")]);
    let direct = allocations_per_call(1000, || {
        library.transmit(SHORT, SCM_MAX_APDU_SIZE);
    });
    row(&["scm_transmit, caller buffer of SCM_MAX_APDU_SIZE".into(), format!("{direct}")]);
    let scratch = allocations_per_call(1000, || {
        library.transmit(SHORT, 258);
    });
    row(&["scm_transmit, 258-byte caller buffer (scratch path)".into(), format!("{scratch}")]);

    println!("\n### Goals checked in this run (per call)\n");
    println!(
        "The floor is this run's raw call through the lab on the same handle (the raw PC/SC column), \
         not a figure from elsewhere.\n"
    );
    header(&["goal", "measured", "bound", "met?"]);
    for (id, figures) in &costs {
        cost_goal(id, figures);
    }
    goal(
        "no-allocation",
        format!("{status}, {direct}, {scratch} per call (status, transmit, scratch path)"),
        "0".into(),
        status == 0.0 && direct == 0.0 && scratch == 0.0,
    );

    drop(raw);
    drop(library);
}

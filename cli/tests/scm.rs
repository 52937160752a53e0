//! `scm` run as a user runs it, against the lab's pcscd: each subcommand's text and JSON, and
//! the exit code of each kind of failure.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use scardmanage_lab::iso::{self, IsoControl, IsoOptions};
use scardmanage_lab::{lease, lease_with, shared, wait_card, Lab, ReaderLease, VirtualCard, SOCKET_ENV};

const WAIT: Duration = Duration::from_secs(10);

/// Runs `scm` against the shared lab (its socket is in this process's environment).
fn scm(args: &[&str]) -> Output {
    shared();
    Command::new(env!("CARGO_BIN_EXE_scm")).args(args).output().expect("scm runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "stdout:\n{}\nstderr:\n{}", stdout(output), stderr(output));
}

fn lease_with_card() -> ReaderLease {
    inserted(lease())
}

fn inserted(lease: ReaderLease) -> ReaderLease {
    lease.insert();
    assert!(wait_card(lease.name(), true, WAIT), "card seen in {}", lease.name());
    lease
}

/// A reader with the lab's ISO 7816-4 card in it.
fn lease_with_iso_card(options: IsoOptions) -> (ReaderLease, IsoControl) {
    let (card, control) = iso::card(options);
    (inserted(lease_with(card)), control)
}

/// Runs `scm` with `input` on its stdin (a pipe, not a terminal).
fn scm_with_input(args: &[&str], input: &[u8]) -> Output {
    shared();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scm runs");
    // A usage error ends scm before it reads: then the pipe is closed, which is no failure.
    if let Err(e) = child.stdin.take().unwrap().write_all(input) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

/// The readers as `scm readers` lists them, in its order.
fn listed() -> Vec<String> {
    let output = scm(&["readers"]);
    assert_exit(&output, 0);
    stdout(&output)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let name = line.strip_prefix(&format!("#{i}  ")).unwrap_or_else(|| panic!("line {i}: {line:?}"));
            name.to_string()
        })
        .collect()
}

#[test]
fn readers_lists_every_reader_with_its_index_in_text_and_json() {
    let names = listed();
    let mut expected: Vec<&str> = shared().readers().iter().map(|r| r.name.as_str()).collect();
    let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
    expected.sort_unstable();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);

    let output = scm(&["readers", "--json"]);
    assert_exit(&output, 0);
    let items: Vec<String> =
        names.iter().enumerate().map(|(i, name)| format!("{{\"index\":{i},\"name\":\"{name}\"}}")).collect();
    assert_eq!(stdout(&output), format!("{{\"readers\":[{}]}}\n", items.join(",")));
    // The flag goes before the subcommand too.
    assert_eq!(stdout(&scm(&["--json", "readers"])), stdout(&output));
}

/// `scm status READER` succeeds with this text, and with --json this object.
#[track_caller]
fn assert_status(reader: &str, text: &str, json: &str) {
    for (args, expected) in [(&["status", reader][..], text), (&["--json", "status", reader], json)] {
        let output = scm(args);
        assert_exit(&output, 0);
        assert_eq!(stdout(&output), expected, "{args:?}");
    }
}

#[test]
fn status_shows_state_protocol_and_atr() {
    let lease = lease_with_card();
    let name = lease.name();
    assert_status(
        name,
        &format!("reader:   {name}\nstate:    specific\nprotocol: T=1\nATR:      3B 80 01 81\n"),
        &format!(
            "{{\"reader\":\"{name}\",\"state\":\"specific\",\"protocol\":\"T=1\",\"atr\":\"3B800181\"}}\n"
        ),
    );
}

#[test]
fn status_of_an_empty_reader_says_absent_and_succeeds() {
    let lease = lease();
    let name = lease.name();
    assert_status(
        name,
        &format!(
            "reader:   {name}\nstate:    absent\nprotocol: undefined\nATR:      none (no card connected)\n"
        ),
        &format!("{{\"reader\":\"{name}\",\"state\":\"absent\",\"protocol\":\"undefined\",\"atr\":null}}\n"),
    );
}

/// (A unique prefix is checked by the unit tests: the lab's readers come in pairs whose names
/// differ only in the last character, so no lab reader has a unique prefix shorter than its name.)
#[test]
fn a_reader_is_named_by_its_index_too() {
    let lease = lease_with_card();
    let index = listed().iter().position(|name| name == lease.name()).expect("the leased reader is listed");
    let by_name = stdout(&scm(&["status", lease.name()]));
    let output = scm(&["status", &format!("#{index}")]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), by_name);
}

#[test]
fn apdu_sends_each_command_in_order_and_prints_the_answers() {
    let lease = lease_with_card();
    // SELECT, then the lab applet's echo (80 10: answers its data, then 90 00), then an
    // instruction it does not know: the status word is printed, not judged.
    let commands = ["00A40400023F00", "80 10 00 00 03 01 02 03", "00:CA:00:00"];
    let mut args = vec!["apdu", lease.name()];
    args.extend(commands);
    let output = scm(&args);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        "> 00 A4 04 00 02 3F 00\n< 90 00\n> 80 10 00 00 03 01 02 03\n< 01 02 03 90 00\n> 00 CA 00 00\n< 6D 00\n"
    );
    assert_eq!(lease.card().counters().apdus, 3);

    args.extend(["--json", "--raw"]);
    let output = scm(&args);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!(
            "{{\"reader\":\"{}\",\"exchanges\":[\
             {{\"command\":\"00A40400023F00\",\"response\":\"9000\",\"sw\":\"9000\"}},\
             {{\"command\":\"8010000003010203\",\"response\":\"0102039000\",\"sw\":\"9000\"}},\
             {{\"command\":\"00CA0000\",\"response\":\"6D00\",\"sw\":\"6D00\"}}]}}\n",
            lease.name()
        )
    );
    assert_eq!(lease.card().counters().apdus, 6);
}

#[test]
fn apdu_collects_61xx_and_fixes_6cxx_unless_raw() {
    // A T=0 card: a SELECT asking for the FCP (case 4) is answered 61xx, a READ BINARY with
    // Le 00 for a 33-byte file 6C21.
    let (lease, iso) = lease_with_iso_card(IsoOptions::T0);
    let select_df = "00A4000C025000";
    let select_ef_with_fcp = "00A4000402500100";
    let read = "00B0810000"; // short EF 1 (EF 5001), offset 0
    let args = ["apdu", lease.name(), select_df, select_ef_with_fcp, read];

    let before = iso.commands_received();
    let output = scm(&[&args[..], &["--raw"]].concat());
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        "> 00 A4 00 0C 02 50 00\n< 90 00\n> 00 A4 00 04 02 50 01 00\n< 61 13\n> 00 B0 81 00 00\n< 6C 21\n"
    );
    assert_eq!(iso.commands_received() - before, 3);

    let before = iso.commands_received();
    let output = scm(&args);
    assert_exit(&output, 0);
    let content = iso::SMALL_CONTENT.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ");
    assert_eq!(
        stdout(&output),
        format!(
            "> 00 A4 00 0C 02 50 00\n< 90 00\n\
             > 00 A4 00 04 02 50 01 00\n< 62 11 82 01 01 83 02 50 01 80 02 00 21 88 01 08 8A 01 05 90 00\n\
             > 00 B0 81 00 00\n< {content} 90 00\n"
        )
    );
    // Each helped command took two: GET RESPONSE after 61xx, the resend after 6Cxx.
    assert_eq!(iso.commands_received() - before, 5);
}

#[test]
fn apdu_with_lengths_that_do_not_match_is_a_usage_error_unless_raw() {
    let lease = lease_with_card();
    // Lc says 2 bytes of data, 1 follows.
    let output = scm(&["apdu", lease.name(), "00A40400023F"]);
    assert_exit(&output, 2);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "scm: scm_transmit_ex: 0x80070057 an argument is out of range or malformed\n"
    );
    assert_eq!(lease.card().counters().apdus, 0);
    let output = scm(&["apdu", "--raw", lease.name(), "00A40400023F"]);
    assert_exit(&output, 0);
    assert_eq!(lease.card().counters().apdus, 1);
}

/// `scm watch` (with `args`) running, its stdout read line by line on a thread.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        shared();
        let mut child = Command::new(env!("CARGO_BIN_EXE_scm"))
            .arg("watch")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("scm runs");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines() {
                if sender.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    /// The next line that ends with `reader`, skipping the other readers' lines.
    #[track_caller]
    fn next_for(&self, reader: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|e| panic!("no line for {reader}: {e}"));
            if line.ends_with(&format!("\"{reader}\"}}")) || line.ends_with(&format!(": {reader}")) {
                return line;
            }
        }
    }

    /// Sends `signal` and waits for the end: the exit code and stderr.
    fn stop(self, signal: i32) -> (Option<i32>, String) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
        let output = self.child.wait_with_output().unwrap();
        (output.status.code(), String::from_utf8(output.stderr).unwrap())
    }
}

#[test]
fn watch_prints_a_card_inserted_and_removed_as_it_happens_until_sigterm() {
    let lease = lease();
    let name = lease.name();
    let watch = Watch::start(&["--json"]);
    // What is there first: the reader, empty.
    assert_eq!(watch.next_for(name), format!("{{\"event\":\"reader_added\",\"reader\":\"{name}\"}}"));
    lease.insert();
    assert_eq!(watch.next_for(name), format!("{{\"event\":\"card_inserted\",\"reader\":\"{name}\"}}"));
    lease.card().remove();
    assert_eq!(watch.next_for(name), format!("{{\"event\":\"card_removed\",\"reader\":\"{name}\"}}"));
    assert_eq!(watch.stop(libc::SIGTERM), (Some(0), String::new()));
}

/// `scm watch > full-pipe`: the consumer has stopped reading, so the first event's write blocks,
/// where no cancel of the monitor reaches; SIGTERM must still end it.
#[test]
fn watch_blocked_writing_to_a_full_pipe_still_ends_on_sigterm() {
    let mut fds = [0; 2];
    // SAFETY: room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors are ours, owned from here on.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Filled without blocking, then made blocking again before scm shares it.
    let mut full = std::fs::File::from(write_end.try_clone().unwrap());
    // SAFETY: fcntl on our own open descriptor.
    unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) };
    while full.write(&[b'x'; 4096]).is_ok() {}
    // SAFETY: as above.
    unsafe { libc::fcntl(fds[1], libc::F_SETFL, 0) };
    shared();
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_scm")).arg("watch").stdout(Stdio::from(write_end)).spawn().unwrap();
    // Its main thread in write(1, ...): the lab's readers are its first events.
    let syscall = format!("/proc/{}/syscall", child.id());
    let deadline = Instant::now() + WAIT;
    // The syscall's number first (write is 1 on x86_64, 4 on i386), then its first argument.
    let in_write = format!("{} 0x1 ", libc::SYS_write);
    while !std::fs::read_to_string(&syscall).unwrap().starts_with(&in_write) {
        assert!(Instant::now() < deadline, "scm watch never blocked writing its output");
        thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(exit_code_within_wait(&mut child), Some(0));
    drop(read_end);
}

/// `child`'s exit code once it has ended; after [`WAIT`], it is killed and the test fails.
#[track_caller]
fn exit_code_within_wait(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("scm still running after {WAIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn watch_reports_what_is_there_first_and_ends_cleanly_on_sigint() {
    let lease = lease_with_card();
    let name = lease.name();
    let watch = Watch::start(&[]);
    assert_eq!(watch.next_for(name), format!("reader added: {name}"));
    assert_eq!(watch.next_for(name), format!("card inserted: {name}"));
    assert_eq!(watch.stop(libc::SIGINT), (Some(0), String::new()));
}

#[test]
fn watch_stops_after_count_events_or_at_the_timeout() {
    // The lab has 16 readers: the first events are at least that many.
    let output = scm(&["watch", "--count", "3"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("reader added: Lab "), "{text}");

    let start = Instant::now();
    // 2 s: room for a loaded machine to start scm and list the 16 readers before the end.
    let output = scm(&["--json", "watch", "--timeout", "2"]);
    let took = start.elapsed();
    assert_exit(&output, 0);
    let text = stdout(&output);
    // Every reader is reported, then nothing more happens to them until the timeout.
    let added = text.lines().filter(|line| line.starts_with("{\"event\":\"reader_added\",")).count();
    assert_eq!(added, shared().readers().len(), "{text}");
    assert!(took >= Duration::from_secs(2) && took < WAIT, "{took:?}");

    for bad in ["0", "-1", "x"] {
        let output = scm(&["watch", "--count", bad]);
        assert_exit(&output, 2);
        let output = scm(&["watch", "--timeout", bad]);
        assert_exit(&output, 2);
    }
}

#[test]
fn verify_reads_the_pin_from_stdin_and_says_what_the_card_said() {
    let (lease, iso) = lease_with_iso_card(IsoOptions::default());
    let name = lease.name();
    let json = |reference: &str, result: &str, tries: &str| {
        format!(
            "{{\"reader\":\"{name}\",\"reference\":\"{reference}\",\"result\":\"{result}\",\"tries_left\":{tries}}}\n"
        )
    };
    // In order, on one card: (--json, REF, stdin, exit code, stdout).
    let runs = [
        (false, "81", "9999\n", 5, "wrong PIN: 2 tries left\n".to_string()),
        (true, "0x81", "9999\r\n", 5, json("81", "wrong", "1")),
        // The right PIN, here without a line end, resets the counter.
        (false, "81", "1234", 0, "ok\n".into()),
        (true, "81", "1234\n", 0, json("81", "ok", "null")),
        (false, "81", "0000\n", 5, "wrong PIN: 2 tries left\n".into()),
        (false, "81", "0000\n", 5, "wrong PIN: 1 try left\n".into()),
        (false, "81", "0000\n", 5, "wrong PIN: 0 tries left\n".into()),
        (false, "81", "1234\n", 5, "PIN blocked\n".into()),
        (true, "81", "1234\n", 5, json("81", "blocked", "0")),
        // PIN 82 has no retry counter: the card answers 63 00.
        (false, "82", "1111\n", 5, "wrong PIN: the card does not say how many tries are left\n".into()),
        (true, "82", "1111\n", 5, json("82", "wrong", "null")),
    ];
    for (json, reference, pin, code, expected) in &runs {
        let mut args = vec!["verify", name, reference];
        if *json {
            args.push("--json");
        }
        let output = scm_with_input(&args, pin.as_bytes());
        assert_exit(&output, *code);
        assert_eq!((stdout(&output), stderr(&output)), (expected.clone(), String::new()), "{args:?} {pin:?}");
    }

    // An unknown reference is the card's status word, as the library reports it.
    let output = scm_with_input(&["verify", name, "85"], b"1234\n");
    assert_exit(&output, 1);
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).starts_with("scm: scm_chv_verify: 0xa0ff6a88 "), "{}", stderr(&output));
    // One VERIFY per run: the tool adds no command of its own.
    assert_eq!(iso.commands_received(), runs.len() as u64 + 1);
}

#[test]
fn verify_without_a_pin_sends_nothing_and_never_takes_one_as_an_argument() {
    let (lease, iso) = lease_with_iso_card(IsoOptions::default());
    let before = iso.commands_received();
    for input in ["", "\n", "\r\n"] {
        let output = scm_with_input(&["verify", lease.name(), "81"], input.as_bytes());
        assert_exit(&output, 2);
        assert_eq!(stderr(&output), "scm: no PIN given (an empty line or no input)\n");
        assert_eq!(stdout(&output), "");
    }
    let output = scm_with_input(&["verify", lease.name(), "81"], &[b'1'; 256]);
    assert_exit(&output, 2);
    assert_eq!(stderr(&output), "scm: the PIN is longer than 255 bytes\n");
    // The PIN as an argument is refused, as are a bad reference and a missing one.
    for (args, why) in [
        (&["verify", lease.name(), "81", "1234"][..], "unexpected argument '1234'"),
        (&["verify", lease.name(), "181"], "invalid value '181' for '<REF>'"),
        (&["verify", lease.name()], "the following required arguments were not provided"),
    ] {
        let output = scm_with_input(args, b"1234\n");
        assert_exit(&output, 2);
        assert!(stderr(&output).contains(why), "{args:?}: {}", stderr(&output));
    }
    assert_eq!(iso.commands_received(), before);
}

/// `scm read`'s dump of `content`, as the text output promises: offset, hex, ASCII, size.
fn dump(content: &[u8]) -> String {
    let mut out = String::new();
    for (line, bytes) in content.chunks(16).enumerate() {
        let hex = bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ");
        let ascii: String =
            bytes.iter().map(|&b| if (0x20..0x7F).contains(&b) { b as char } else { '.' }).collect();
        out += &format!("{:04X}  {hex:<47}  {ascii}\n", line * 16);
    }
    out + &format!("{} bytes\n", content.len())
}

#[test]
fn read_prints_a_file_by_path_by_df_name_and_short_id() {
    let (lease, _iso) = lease_with_iso_card(IsoOptions::default());
    let name = lease.name();
    let df_name: String = iso::DF_NAME.iter().map(|b| format!("{b:02X}")).collect();
    let small = dump(iso::SMALL_CONTENT);
    assert!(
        small.starts_with("0000  73 63 61 72 64 6D 61 6E 61 67 65 20 49 53 4F 20  scardmanage ISO \n"),
        "{small}"
    );
    for args in [
        &["read", name, "5000/5001"][..],
        &["read", name, "3F0050005001"],
        &["read", name, "--name", &df_name, "5001"],
        &["read", name, "--name", &df_name, "--sfi", "1"],
    ] {
        let output = scm(args);
        assert_exit(&output, 0);
        assert_eq!(stdout(&output), small, "{args:?}");
    }
    // A record file: its records one after the other.
    let output = scm(&["--json", "read", name, "3F00/5000/5003"]);
    assert_exit(&output, 0);
    let records: String =
        (1..=iso::RECORD_COUNT as u8).map(|n| format!("{n:02X}").repeat(iso::RECORD_LEN)).collect();
    assert_eq!(stdout(&output), format!("{{\"reader\":\"{name}\",\"size\":48,\"data\":\"{records}\"}}\n"));
}

#[test]
fn read_writes_a_big_file_to_out_as_raw_bytes() {
    let (lease, _iso) = lease_with_iso_card(IsoOptions::T0);
    let out = std::env::temp_dir().join(format!("scm-read-{}.bin", std::process::id()));
    let path = out.to_str().unwrap();
    let output = scm(&["read", lease.name(), "5000/5002", "--out", path]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), format!("40000 bytes written to {path}\n"));
    let written = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert!(written == iso::big_content(), "{} bytes, not the EF's content", written.len());

    let output = scm(&["--json", "read", lease.name(), "5000/5005", "--out", path]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!("{{\"reader\":\"{}\",\"size\":9,\"out\":\"{path}\"}}\n", lease.name())
    );
    assert_eq!(std::fs::read(&out).unwrap(), iso::READ_ONLY_CONTENT);
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn read_says_what_the_card_refused_and_refuses_bad_paths_before_sending() {
    let (lease, iso) = lease_with_iso_card(IsoOptions::default());
    let name = lease.name();
    let output = scm(&["read", name, "5000/5999"]);
    assert_exit(&output, 1);
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).starts_with("scm: scm_file_open: 0x80100024 "), "{}", stderr(&output));
    // EF 5004 needs PIN 81.
    let output = scm(&["read", name, "5000/5004"]);
    assert_exit(&output, 1);
    assert!(stderr(&output).starts_with("scm: scm_file_read: 0x8010006a "), "{}", stderr(&output));

    let before = iso.commands_received();
    for (args, why) in [
        (&["read", name, "50"][..], "scm: scm_file_open: 0x80070057 "),
        (&["read", name, "5000//5001"], "scm: scm_file_open: 0x80070057 "),
        (&["read", name], "required arguments were not provided"),
        (&["read", name, "5001", "--sfi", "1"], "cannot be used with"),
        (&["read", name, "--sfi", "31"], "invalid value '31'"),
        (&["read", name, "--name", "F0G0", "5001"], "invalid value 'F0G0'"),
    ] {
        let output = scm(args);
        assert_exit(&output, 2);
        assert!(stderr(&output).contains(why), "{args:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), "");
    }
    assert_eq!(iso.commands_received(), before, "nothing sent for a bad path");
}

/// A linear variable record file may hold an empty record (an erased one): it is 0 bytes of the
/// file, not its end. `scm read` stopped there and printed only the records before it, exit 0.
#[test]
fn read_goes_on_past_an_empty_record() {
    let card = VirtualCard::new(scardmanage_lab::DEFAULT_ATR.to_vec(), |apdu| {
        let answer: &[u8] = match (apdu[1], apdu[2], apdu[3]) {
            // SELECT: the MF without an answer, the EF with an FCP saying "linear variable".
            (0xA4, _, p2) if p2 & 0x0C == 0x0C => &[0x90, 0x00],
            (0xA4, _, _) => &[0x62, 0x03, 0x82, 0x01, 0x04, 0x90, 0x00],
            (0xB2, 1, 0x04) => &[0x11, 0x11, 0x90, 0x00],
            (0xB2, 2, 0x04) => &[0x90, 0x00],
            (0xB2, 3, 0x04) => &[0x33, 0x90, 0x00],
            (0xB2, _, 0x04) => &[0x6A, 0x83],
            _ => &[0x6D, 0x00],
        };
        scardmanage_lab::Reply::Respond(answer.to_vec())
    });
    let lease = inserted(lease_with(card));
    let output = scm(&["--json", "read", lease.name(), "2F10"]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!("{{\"reader\":\"{}\",\"size\":3,\"data\":\"111133\"}}\n", lease.name())
    );
}

#[test]
fn a_pin_verified_by_one_scm_opens_the_file_for_the_next() {
    let (lease, _iso) = lease_with_iso_card(IsoOptions::default());
    let output = scm_with_input(&["verify", lease.name(), "81"], b"1234\n");
    assert_exit(&output, 0);
    let output = scm(&["read", lease.name(), "5000/5004"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), dump(iso::SECRET_CONTENT));
}

/// `scm` (with `args`) on a terminal of its own: a pseudo-terminal whose other side the test
/// holds, made the controlling terminal of a new session, so that `/dev/tty` is it.
struct Terminal {
    child: Child,
    master: std::fs::File,
    /// The terminal's side as the program sees it, kept open to read its settings.
    slave: std::os::fd::OwnedFd,
    seen: mpsc::Receiver<u8>,
}

impl Terminal {
    fn start(args: &[&str]) -> Terminal {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        shared();
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: valid out-pointers; NULL name, settings and size are allowed.
        let opened = unsafe {
            libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null())
        };
        assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty returned two open descriptors that nothing else owns.
        let (master, slave) = unsafe { (std::fs::File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        assert!(echo(&slave), "a new terminal echoes");
        let mut command = Command::new(env!("CARGO_BIN_EXE_scm"));
        command
            .args(args)
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave.try_clone().unwrap());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("scm runs");
        let (sender, seen) = mpsc::channel();
        let mut reader = master.try_clone().unwrap();
        thread::spawn(move || {
            let mut byte = [0u8];
            // Ends with EIO once no process has the terminal open but the test.
            while std::io::Read::read(&mut reader, &mut byte).is_ok_and(|n| n == 1) {
                if sender.send(byte[0]).is_err() {
                    break;
                }
            }
        });
        Terminal { child, master, slave, seen }
    }

    /// What the program wrote, up to and including `wanted`.
    #[track_caller]
    fn read_until(&self, wanted: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut text = Vec::new();
        while !text.ends_with(wanted.as_bytes()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.seen.recv_timeout(left) {
                Ok(byte) => text.push(byte),
                Err(e) => panic!("{wanted:?} not seen ({e}); seen: {:?}", String::from_utf8_lossy(&text)),
            }
        }
        String::from_utf8(text).unwrap()
    }

    fn echo(&self) -> bool {
        echo(&self.slave)
    }
}

/// Whether the terminal shows what is typed.
fn echo(terminal: &std::os::fd::OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: termios is plain data, filled in by tcgetattr on an open terminal.
    let mut settings = unsafe { std::mem::zeroed::<libc::termios>() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::tcgetattr(terminal.as_raw_fd(), &mut settings) }, 0);
    settings.c_lflag & libc::ECHO != 0
}

/// With no card in the reader, `scm verify` asked for the PIN anyway, and only said so after
/// it had been typed.
#[test]
fn verify_with_no_card_says_so_before_asking_for_the_pin() {
    let lease = lease();
    let mut terminal = Terminal::start(&["verify", lease.name(), "81"]);
    assert_eq!(exit_code_within_wait(&mut terminal.child), Some(4));
    let seen = terminal.read_until("\n");
    assert!(seen.starts_with("scm: ") && seen.contains("no smart card"), "{seen:?}");
    assert!(terminal.echo());
}

/// Waits until `done()`, or fails saying `what` did not happen.
#[track_caller]
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` is stopped (state T in /proc).
fn stopped(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The state follows the command's name, which is in parentheses.
    stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('T'))
}

/// Ctrl-Z at the prompt: the shell gets its terminal back with echo on, and `fg` goes on with
/// echo on too (the shell put it back), where the PIN would be shown as typed.
#[test]
fn verify_stopped_at_the_prompt_puts_echo_back_and_turns_it_off_again_when_continued() {
    let (lease, iso) = lease_with_iso_card(IsoOptions::default());
    let mut terminal = Terminal::start(&["verify", lease.name(), "81"]);
    assert_eq!(terminal.read_until(": "), "PIN (81): ");
    let pid = terminal.child.id();
    let signal = |signal| {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
    };
    // SIGSTOP cannot be caught: what a shell does then, echo on, is undone at SIGCONT.
    signal(libc::SIGSTOP);
    wait_until("stopped", || stopped(pid));
    set_echo(&terminal.slave);
    signal(libc::SIGCONT);
    wait_until("echo off again after SIGCONT", || !terminal.echo());

    // SIGTSTP as `kill -TSTP` sends it (the terminal's Ctrl-Z is not sent to this test's
    // terminal session, which no shell leads).
    signal(libc::SIGTSTP);
    wait_until("stopped", || stopped(pid));
    assert!(terminal.echo(), "echo is on while stopped");
    signal(libc::SIGCONT);
    wait_until("echo off again after SIGCONT", || !terminal.echo());

    terminal.master.write_all(b"1234\n").unwrap();
    assert_eq!(terminal.read_until("ok\r\n"), "\r\nok\r\n");
    assert_eq!(exit_code_within_wait(&mut terminal.child), Some(0));
    assert!(terminal.echo());
    assert_eq!(iso.commands_received(), 1);
}

/// Turns echo on, as a shell does when it gets its terminal back.
fn set_echo(terminal: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: termios is plain data, filled in by tcgetattr on an open terminal.
    let mut settings = unsafe { std::mem::zeroed::<libc::termios>() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::tcgetattr(terminal.as_raw_fd(), &mut settings) }, 0);
    settings.c_lflag |= libc::ECHO;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::tcsetattr(terminal.as_raw_fd(), libc::TCSANOW, &settings) }, 0);
}

#[test]
fn verify_at_a_terminal_reads_the_pin_with_echo_off_and_puts_echo_back() {
    let (lease, iso) = lease_with_iso_card(IsoOptions::default());
    let mut terminal = Terminal::start(&["verify", lease.name(), "81"]);
    assert_eq!(terminal.read_until(": "), "PIN (81): ");
    assert!(!terminal.echo(), "echo is off at the prompt");
    terminal.master.write_all(b"1234\n").unwrap();
    // The typed PIN is not shown; the line's end is, then the result (the terminal turns
    // "\n" into "\r\n").
    assert_eq!(terminal.read_until("ok\r\n"), "\r\nok\r\n");
    assert_eq!(exit_code_within_wait(&mut terminal.child), Some(0));
    assert!(terminal.echo(), "echo is back");
    assert_eq!(iso.commands_received(), 1);

    // Ctrl-C at the prompt: echo back, exit 130, nothing sent.
    let mut terminal = Terminal::start(&["verify", lease.name(), "81"]);
    assert_eq!(terminal.read_until(": "), "PIN (81): ");
    assert!(!terminal.echo());
    terminal.master.write_all(b"12\x03").unwrap();
    assert_eq!(exit_code_within_wait(&mut terminal.child), Some(130));
    assert!(terminal.echo(), "echo is back after Ctrl-C");
    assert_eq!(iso.commands_received(), 1);

    // Ctrl-\ (SIGQUIT, typed) and SIGTERM (sent) at the prompt: echo back too, and the exit
    // code says which signal it was.
    for (signal, typed) in [(libc::SIGQUIT, Some(b"12\x1c")), (libc::SIGTERM, None)] {
        let mut terminal = Terminal::start(&["verify", lease.name(), "81"]);
        assert_eq!(terminal.read_until(": "), "PIN (81): ");
        assert!(!terminal.echo());
        match typed {
            Some(keys) => terminal.master.write_all(keys).unwrap(),
            // SAFETY: kill(2) on our own child's pid.
            None => assert_eq!(unsafe { libc::kill(terminal.child.id() as i32, signal) }, 0),
        }
        assert_eq!(exit_code_within_wait(&mut terminal.child), Some(128 + signal), "signal {signal}");
        assert!(terminal.echo(), "echo is back after signal {signal}");
    }
    assert_eq!(iso.commands_received(), 1);
}

#[test]
fn an_unknown_or_ambiguous_reader_exits_3_and_sends_nothing() {
    let lease = lease_with_card();
    let output = scm(&["apdu", "No Such Reader", "00A40400023F00"]);
    assert_exit(&output, 3);
    assert_eq!(stdout(&output), "");
    assert_eq!(stderr(&output), "scm: no reader matches \"No Such Reader\" (see `scm readers`)\n");

    let count = shared().readers().len();
    let output = scm(&["status", &format!("#{count}")]);
    assert_exit(&output, 3);
    assert_eq!(stderr(&output), format!("scm: no reader #{count}: there are {count} (see `scm readers`)\n"));

    // Every lab reader's name starts with "Lab ".
    let output = scm(&["--json", "status", "Lab "]);
    assert_exit(&output, 3);
    assert!(
        stderr(&output).starts_with(&format!("scm: \"Lab \" matches {count} readers: ")),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "");
    assert_eq!(lease.card().counters().apdus, 0);
}

#[test]
fn bad_hex_is_a_usage_error_and_nothing_is_sent() {
    let lease = lease_with_card();
    // The first APDU is good: all are checked before any is sent.
    for bad in ["00A4040G", "00A404000", "00A404", ""] {
        let output = scm(&["apdu", lease.name(), "00A40400023F00", bad]);
        assert_exit(&output, 2);
        assert!(stderr(&output).contains("invalid value"), "{bad:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), "");
    }
    assert_eq!(lease.card().counters().apdus, 0);
}

#[test]
fn no_card_exits_4_with_the_hresult_and_the_library_message() {
    let lease = lease();
    for json in [false, true] {
        let mut args = vec!["apdu", lease.name(), "00A40400023F00"];
        if json {
            args.push("--json");
        }
        let output = scm(&args);
        assert_exit(&output, 4);
        assert_eq!(stdout(&output), "");
        assert_eq!(
            stderr(&output),
            "scm: scm_transmit_ex: 0x8010000c PC/SC: no smart card is in the reader (or connected)\n"
        );
    }
}

#[test]
fn no_pcsc_service_exits_1_with_the_hresult() {
    // A real PC/SC failure: libpcsclite pointed at a socket no daemon listens on.
    let dir = std::env::temp_dir().join(format!("scm-no-service-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_scm"))
        .arg("readers")
        .env("PCSCLITE_CSOCK_NAME", dir.join("pcscd.comm"))
        .output()
        .unwrap();
    assert_exit(&output, 1);
    assert!(
        stderr(&output)
            .starts_with("scm: scm_list_readers: 0x8010001d PC/SC: the smart card service is not running"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in
        [&[][..], &["frob"], &["readers", "--frob"], &["status"], &["apdu", "#0"], &["readers", "extra"]]
    {
        let output = scm(args);
        assert_exit(&output, 2);
        assert!(stderr(&output).contains("Usage: scm"), "{args:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), "");
    }
}

#[test]
fn help_covers_every_subcommand_and_only_the_ones_that_exist() {
    let main = scm(&["help"]);
    assert_exit(&main, 0);
    let text = stdout(&main);
    assert_eq!(stdout(&scm(&["--help"])), text);
    let subcommands = ["readers", "status", "apdu", "read", "watch", "verify"];
    for line in subcommands.map(|sub| format!("  {sub} ")).iter().chain(&[
        "  3  reader not found".to_string(),
        "  5  the card refused the PIN".to_string(),
        "#N".to_string(),
    ]) {
        assert!(text.contains(line.as_str()), "{line:?} missing from:\n{text}");
    }
    for sub in subcommands {
        let help = scm(&["help", sub]);
        assert_exit(&help, 0);
        assert_eq!(stdout(&scm(&[sub, "--help"])), stdout(&help), "{sub}");
        assert!(stdout(&help).contains("JSON: "), "{sub}: {}", stdout(&help));
    }
    let apdu = stdout(&scm(&["help", "apdu"]));
    assert!(
        apdu.contains("--raw") && apdu.contains("GET RESPONSE") && apdu.contains("scm_transmit_ex"),
        "{apdu}"
    );
    let watch = stdout(&scm(&["help", "watch"]));
    assert!(
        watch.contains("--count <N>") && watch.contains("--timeout <SECONDS>") && watch.contains("SIGTERM"),
        "{watch}"
    );
    let verify = stdout(&scm(&["help", "verify"]));
    assert!(verify.contains("echo off") && verify.contains("first line of stdin"), "{verify}");
}

/// A pipe whose reading end is closed: writing to it fails with EPIPE.
fn pipe_with_no_reader() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors are ours; the writing one is owned from here on.
    unsafe {
        libc::close(fds[0]);
        Stdio::from(OwnedFd::from_raw_fd(fds[1]))
    }
}

/// `scm readers | head -0`, or a full disk: `print!` panicked there (exit 101 and a backtrace)
/// and, for `apdu`, the panic was the only thing that stopped the exchange.
#[test]
fn output_that_cannot_be_written_exits_1_and_stops_the_exchange() {
    let lease = lease_with_card();
    let command = "00A40400023F00";
    let mut sent = 0;
    for (stdout, error) in [
        (pipe_with_no_reader as fn() -> Stdio, "Broken pipe"),
        (|| Stdio::from(std::fs::File::options().write(true).open("/dev/full").unwrap()), "No space left"),
    ] {
        for (args, apdus) in [
            (&["readers"][..], 0),
            (&["--json", "status", lease.name()], 0),
            (&["apdu", lease.name(), command, command, command], 1),
            (&["apdu", "--json", lease.name(), command, command], 2),
        ] {
            shared();
            let output =
                Command::new(env!("CARGO_BIN_EXE_scm")).args(args).stdout(stdout()).output().unwrap();
            assert_exit(&output, 1);
            assert!(
                stderr(&output).starts_with("scm: writing the output: "),
                "{args:?}: {}",
                stderr(&output)
            );
            assert!(stderr(&output).contains(error), "{args:?}: {}", stderr(&output));
            sent += apdus;
            assert_eq!(lease.card().counters().apdus, sent, "{args:?}: APDUs sent");
        }
    }
    // The message cannot be written either: the exit code still says what failed.
    let output = Command::new(env!("CARGO_BIN_EXE_scm"))
        .args(["status", "No Such Reader"])
        .stderr(pipe_with_no_reader())
        .output()
        .unwrap();
    assert_exit(&output, 3);
}

/// `scm watch | head -3`: the consumer leaving is how a watch ends, not a failure; a full disk
/// is one.
#[test]
fn watch_ends_with_0_when_its_reader_leaves_and_1_on_a_full_disk() {
    shared();
    let output =
        Command::new(env!("CARGO_BIN_EXE_scm")).arg("watch").stdout(pipe_with_no_reader()).output().unwrap();
    assert_exit(&output, 0);
    assert_eq!(stderr(&output), "");
    let full = std::fs::File::options().write(true).open("/dev/full").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_scm")).arg("watch").stdout(full).output().unwrap();
    assert_exit(&output, 1);
    assert!(stderr(&output).starts_with("scm: writing the output: No space left"), "{}", stderr(&output));
}

/// A reader whose driver names it in Latin-1 ("Lab \xE9") is listed with U+FFFD, and that
/// printed name can be another reader's. `scm` attached by the printed name: `scm apdu #N` on
/// the empty Latin-1 reader sent the APDU to the card in the reader truly named
/// "Lab \u{FFFD} 00 00", and exited 0. It passes the listed bytes now, which the library
/// refuses (not UTF-8), so the command fails and no card sees anything it was not sent.
#[test]
fn a_reader_named_in_latin1_is_refused_not_mistaken_for_another() {
    let lab = Lab::start_named_bytes(2, &[(0, "Lab \u{FFFD}".into()), (1, b"Lab \xE9".to_vec())]).unwrap();
    let card = VirtualCard::with_default_applet();
    card.insert(lab.readers()[0].port);
    let scm = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_scm"))
            .args(args)
            .env(SOCKET_ENV, lab.socket_path())
            .output()
            .unwrap()
    };
    let look_alike = "Lab \u{FFFD} 00 00";
    let indexes: Vec<String> = stdout(&scm(&["readers"]))
        .lines()
        .filter_map(|line| line.strip_suffix(&format!("  {look_alike}")).map(str::to_string))
        .collect();
    assert_eq!(indexes.len(), 2, "both first readers print as {look_alike:?}: {indexes:?}");
    let started = std::time::Instant::now();
    while !indexes.iter().any(|index| stdout(&scm(&["status", index])).contains("specific")) {
        assert!(started.elapsed() < WAIT, "pcscd saw the card");
        std::thread::sleep(Duration::from_millis(50));
    }
    let codes: Vec<Option<i32>> = indexes
        .iter()
        .map(|index| {
            let output = scm(&["apdu", index, "80 10 00 00 02 CA FE"]);
            // The library refuses the name as invalid (SCM_E_INVALIDARG): exit 2.
            if output.status.code() == Some(2) {
                assert!(
                    stderr(&output).starts_with("scm: scm_attach_by_ifd: 0x80070057"),
                    "{}",
                    stderr(&output)
                );
            }
            output.status.code()
        })
        .collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [Some(0), Some(2)], "{indexes:?} exited {codes:?}");
    assert_eq!(card.counters().apdus, 1, "the card got the APDU sent to it, and no other");
}

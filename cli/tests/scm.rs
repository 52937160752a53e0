//! `scm` run as a user runs it, against the lab's pcscd: each subcommand's text and JSON, and
//! the exit code of each kind of failure.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use scardmanage_lab::{lease, shared, wait_card, Lab, ReaderLease, VirtualCard, SOCKET_ENV};

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
    let lease = lease();
    lease.insert();
    assert!(wait_card(lease.name(), true, WAIT), "card seen in {}", lease.name());
    lease
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
            "scm: scm_transmit: 0x8010000c PC/SC: no smart card is in the reader (or connected)\n"
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
    for line in ["  readers  ", "  status   ", "  apdu     ", "  3  reader not found", "#N"] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    for later in ["watch", "read ", "verify"] {
        assert!(!text.contains(later), "{later:?} in:\n{text}");
    }
    for sub in ["readers", "status", "apdu"] {
        let help = scm(&["help", sub]);
        assert_exit(&help, 0);
        assert_eq!(stdout(&scm(&[sub, "--help"])), stdout(&help), "{sub}");
        assert!(stdout(&help).contains("JSON: {"), "{sub}: {}", stdout(&help));
    }
    let apdu = stdout(&scm(&["help", "apdu"]));
    assert!(
        apdu.contains("--raw") && apdu.contains("GET RESPONSE") && apdu.contains("scm_transmit_ex"),
        "{apdu}"
    );
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
            if output.status.code() == Some(1) {
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
    assert_eq!(sorted, [Some(0), Some(1)], "{indexes:?} exited {codes:?}");
    assert_eq!(card.counters().apdus, 1, "the card got the APDU sent to it, and no other");
}

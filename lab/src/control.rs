//! A lab driven from another process: the control channel of `scm-lab run`.
//!
//! Programs run by `scm-lab` (Linux ones, and Windows ones under Wine, which reach it through
//! Winsock) cannot call the lab's Rust API, yet their tests must insert and remove cards and
//! kill the daemon. [`LabControl::serve`] listens on `127.0.0.1:<port>` (given to the program as
//! `SCM_LAB_CONTROL`) and answers one line per request line, on as many connections as the
//! program opens, each served by a thread of its own:
//!
//! | request | reply |
//! |---|---|
//! | `readers` | `ok <n>`: the number of readers |
//! | `reader <i>` | `ok <name>`: reader `i`'s name, UTF-8 |
//! | `insert <i>` | `ok` once pcscd sees a fresh card in reader `i`: a default-applet card, or an ISO card (factory state) in a lab made by [`LabControl::with_iso`] (`scm-lab run --iso`) |
//! | `remove <i>` | `ok` once pcscd sees reader `i` empty |
//! | `kill` | `ok` once the daemon is dead (SIGKILL) |
//! | `start` | `ok` once the daemon runs again with the same readers and its cards are back |
//! | `restart` | `kill` then `start` |
//! | `last-control` | `ok 0x<code>` or `ok none`: the last `SCardControl` code the WinSCard bridge passed to pcscd (see [`crate::bridge`]) |
//! | `counters <i>` | `ok apdus=N resets=N power_on=N power_off=N atr_requests=N connections=N`, the [`Counters`] of the last card inserted in reader `i` |
//! | `iso-hostile <i> <mode>` | `ok`: the ISO card last inserted in reader `i` misbehaves as [`Hostile::from_name`]`(mode)` says (`none` to stop) |
//! | `iso-reset <i>` | `ok`: that ISO card back to its factory state ([`IsoControl::reset`]) |
//! | `iso-commands <i>` | `ok <n>`: the APDUs that ISO card has received ([`IsoControl::commands_received`]) |
//!
//! Anything else, or a request that fails, gets `error <text>`; so does a line longer than
//! 1 KiB, which is dropped as it arrives rather than kept. Requests are carried out one at
//! a time, in the order they arrive.

use crate::card::{Counters, VirtualCard};
use crate::daemon::{Lab, Reader};
use crate::iso::{self, Hostile, IsoControl, IsoOptions};
use crate::shared::wait_card;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

/// The longest request line kept; a longer one is answered with an error.
const MAX_REQUEST: usize = 1024;
/// How long pcscd may take to see a card come or go; it polls about every 400 ms.
const SEEN_TIMEOUT: Duration = Duration::from_secs(10);
/// A removed card's reader rests this long before the next card goes in: a card swapped within
/// one presence poll of pcscd is never powered up (see [`wait_card`]).
const SETTLE: Duration = Duration::from_millis(500);

/// A [`Lab`] with one card slot per reader, operated by requests.
pub struct LabControl {
    readers: Vec<Reader>,
    socket: PathBuf,
    /// The options of the ISO cards [`insert`](LabControl::insert) makes, or `None` for
    /// default-applet cards.
    iso: Option<IsoOptions>,
    state: Mutex<State>,
}

struct State {
    /// `None` once [`LabControl::close`] has run.
    lab: Option<Lab>,
    /// The last card inserted in each reader (kept after removal for its counters), with its
    /// control when it is an ISO card.
    cards: Vec<Option<(VirtualCard, Option<IsoControl>)>>,
}

impl LabControl {
    /// Takes over `lab` and points this process's libpcsclite at it (`PCSCLITE_CSOCK_NAME`),
    /// since waiting for pcscd to see a card is a PC/SC call. Call it before this process makes
    /// any other PC/SC call.
    pub fn new(lab: Lab) -> Arc<LabControl> {
        LabControl::with_iso(lab, None)
    }

    /// Like [`new`](Self::new), and with `Some(options)` every card it inserts is an ISO card
    /// ([`crate::iso::card`]) with those options.
    pub fn with_iso(lab: Lab, iso: Option<IsoOptions>) -> Arc<LabControl> {
        std::env::set_var(crate::SOCKET_ENV, lab.socket_path());
        Arc::new(LabControl {
            readers: lab.readers().to_vec(),
            socket: lab.socket_path(),
            iso,
            state: Mutex::new(State { cards: vec![None; lab.readers().len()], lab: Some(lab) }),
        })
    }

    /// The readers, in the order of their indices.
    pub fn readers(&self) -> &[Reader] {
        &self.readers
    }

    /// The daemon's socket, for `PCSCLITE_CSOCK_NAME`.
    pub fn socket_path(&self) -> &PathBuf {
        &self.socket
    }

    /// Inserts a fresh card (default applet, or ISO card when the lab was made so) into reader
    /// `index` (removing the one there) and waits until pcscd sees it.
    pub fn insert(&self, index: usize) -> Result<(), String> {
        let mut state = self.lock();
        let reader = self.reader(index)?;
        if let Some((old, _)) = state.cards[index].take().filter(|(card, _)| card.is_inserted()) {
            old.remove();
            self.wait(reader, false)?;
            thread::sleep(SETTLE);
        }
        let (card, iso) = match self.iso {
            Some(options) => {
                let (card, control) = iso::card(options);
                (card, Some(control))
            }
            None => (VirtualCard::with_default_applet(), None),
        };
        card.insert(reader.port);
        state.cards[index] = Some((card, iso));
        self.wait(reader, true)
    }

    /// Removes the card of reader `index`, if any, and waits until pcscd sees the reader empty.
    pub fn remove(&self, index: usize) -> Result<(), String> {
        let state = self.lock();
        let reader = self.reader(index)?;
        if let Some((card, _)) = &state.cards[index] {
            card.remove();
        }
        self.wait(reader, false)
    }

    /// SIGKILLs the daemon.
    pub fn kill(&self) -> Result<(), String> {
        self.lock().lab()?.kill();
        Ok(())
    }

    /// Starts the daemon again (killing it first if it runs) and waits until it serves its
    /// readers and sees the cards that are in.
    pub fn start(&self) -> Result<(), String> {
        let mut state = self.lock();
        state.lab()?.restart().map_err(|e| e.to_string())?;
        for (reader, card) in self.readers.iter().zip(&state.cards) {
            if card.as_ref().is_some_and(|(card, _)| card.is_inserted()) {
                self.wait(reader, true)?;
            }
        }
        Ok(())
    }

    /// What the last card inserted in reader `index` has seen.
    pub fn counters(&self, index: usize) -> Result<Counters, String> {
        self.reader(index)?;
        self.lock().cards[index]
            .as_ref()
            .map(|(card, _)| card.counters())
            .ok_or_else(|| format!("no card was ever inserted in reader {index}"))
    }

    /// The control of the ISO card last inserted in reader `index`.
    pub fn iso(&self, index: usize) -> Result<IsoControl, String> {
        self.reader(index)?;
        self.lock().cards[index]
            .as_ref()
            .and_then(|(_, iso)| iso.clone())
            .ok_or_else(|| format!("no ISO card was inserted in reader {index} (scm-lab run --iso)"))
    }

    /// The last lines of the daemon's output.
    pub fn log_tail(&self) -> String {
        self.lock().lab.as_ref().map(Lab::log_tail).unwrap_or_default()
    }

    /// Removes every card and stops the lab (its temp dir goes too); later requests fail.
    pub fn close(&self) {
        let mut state = self.lock();
        for (card, _) in state.cards.iter().flatten() {
            card.remove();
        }
        state.lab = None;
    }

    /// Listens on a free port of 127.0.0.1 and serves the control channel there from
    /// background threads, for as long as the process lives. Returns the address.
    pub fn serve(self: &Arc<Self>) -> io::Result<SocketAddr> {
        let control = Arc::clone(self);
        crate::serve_connections("scm-lab-control", move |stream| control.converse(stream))
    }

    /// Answers the requests of one connection until it closes.
    fn converse(&self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = Vec::new();
            match (&mut reader).take(MAX_REQUEST as u64).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let request = if line.len() == MAX_REQUEST && !line.ends_with(b"\n") {
                // The rest of the line is dropped as it arrives, never held.
                if reader.skip_until(b'\n').is_err() {
                    return;
                }
                Err(format!("a request longer than {MAX_REQUEST} bytes"))
            } else {
                String::from_utf8(line).map_err(|_| "a request that is not UTF-8".to_string())
            };
            let answer = request.and_then(|r| self.answer(r.trim_end_matches('\n').trim_end_matches('\r')));
            let reply = match answer {
                Ok(data) if data.is_empty() => "ok\n".to_string(),
                Ok(data) => format!("ok {data}\n"),
                Err(e) => format!("error {}\n", e.replace('\n', " | ")),
            };
            if writer.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    }

    /// Carries out one request; `Ok` holds the reply's data.
    pub fn answer(&self, request: &str) -> Result<String, String> {
        let mut words = request.split_whitespace();
        let verb = words.next().unwrap_or_default();
        let index = |argument: Option<&str>| -> Result<usize, String> {
            argument.and_then(|a| a.parse().ok()).ok_or_else(|| format!("{verb} needs a reader index"))
        };
        let argument = words.next();
        // Only iso-hostile takes a second argument.
        let mode = if verb == "iso-hostile" { words.next() } else { None };
        if words.next().is_some() {
            return Err(format!("too many arguments in {request:?}"));
        }
        match verb {
            "readers" => Ok(self.readers.len().to_string()),
            "reader" => Ok(self.reader(index(argument)?)?.name.clone()),
            "insert" => self.insert(index(argument)?).map(|()| String::new()),
            "remove" => self.remove(index(argument)?).map(|()| String::new()),
            "kill" => self.kill().map(|()| String::new()),
            "start" | "restart" => self.start().map(|()| String::new()),
            "last-control" => Ok(crate::bridge::last_control_code()
                .map_or_else(|| "none".to_string(), |c| format!("0x{c:08X}"))),
            "counters" => self.counters(index(argument)?).map(|c| {
                format!(
                    "apdus={} resets={} power_on={} power_off={} atr_requests={} connections={}",
                    c.apdus, c.resets, c.power_on, c.power_off, c.atr_requests, c.connections
                )
            }),
            "iso-hostile" => {
                let iso = self.iso(index(argument)?)?;
                let mode = mode.ok_or("iso-hostile needs a reader index and a mode")?;
                let mode = Hostile::from_name(mode).ok_or_else(|| {
                    let names: Vec<&str> = Hostile::ALL.iter().map(|h| h.name()).collect();
                    format!("no hostile mode {mode:?}; the modes are {}", names.join(" "))
                })?;
                iso.set_hostile(mode);
                Ok(String::new())
            }
            "iso-reset" => self.iso(index(argument)?).map(|iso| {
                iso.reset();
                String::new()
            }),
            "iso-commands" => self.iso(index(argument)?).map(|iso| iso.commands_received().to_string()),
            _ => Err(format!("unknown request {request:?}")),
        }
    }

    fn reader(&self, index: usize) -> Result<&Reader, String> {
        self.readers
            .get(index)
            .ok_or_else(|| format!("no reader {index}: the lab has {}", self.readers.len()))
    }

    fn wait(&self, reader: &Reader, present: bool) -> Result<(), String> {
        if wait_card(&reader.name, present, SEEN_TIMEOUT) {
            return Ok(());
        }
        let what = if present { "the card" } else { "the reader empty" };
        Err(format!("pcscd did not see {what} in {:?} within {} s", reader.name, SEEN_TIMEOUT.as_secs()))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn lab(&mut self) -> Result<&mut Lab, String> {
        self.lab.as_mut().ok_or_else(|| "the lab is closed".to_string())
    }
}

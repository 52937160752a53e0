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
//! | `insert <i>` | `ok` once pcscd sees a fresh default-applet card in reader `i` |
//! | `remove <i>` | `ok` once pcscd sees reader `i` empty |
//! | `kill` | `ok` once the daemon is dead (SIGKILL) |
//! | `start` | `ok` once the daemon runs again with the same readers and its cards are back |
//! | `restart` | `kill` then `start` |
//! | `last-control` | `ok 0x<code>` or `ok none`: the last `SCardControl` code the WinSCard bridge passed to pcscd (see [`crate::bridge`]) |
//! | `counters <i>` | `ok apdus=N resets=N power_on=N power_off=N atr_requests=N connections=N`, the [`Counters`] of the last card inserted in reader `i` |
//!
//! Anything else, or a request that fails, gets `error <text>`. Requests are carried out one at
//! a time, in the order they arrive.

use crate::card::{Counters, VirtualCard};
use crate::daemon::{Lab, Reader};
use crate::shared::wait_card;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

/// How long pcscd may take to see a card come or go; it polls about every 400 ms.
const SEEN_TIMEOUT: Duration = Duration::from_secs(10);
/// A removed card's reader rests this long before the next card goes in: a card swapped within
/// one presence poll of pcscd is never powered up (see [`wait_card`]).
const SETTLE: Duration = Duration::from_millis(500);

/// A [`Lab`] with one card slot per reader, operated by requests.
pub struct LabControl {
    readers: Vec<Reader>,
    socket: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// `None` once [`LabControl::close`] has run.
    lab: Option<Lab>,
    /// The last card inserted in each reader (kept after removal for its counters).
    cards: Vec<Option<VirtualCard>>,
}

impl LabControl {
    /// Takes over `lab` and points this process's libpcsclite at it (`PCSCLITE_CSOCK_NAME`),
    /// since waiting for pcscd to see a card is a PC/SC call. Call it before this process makes
    /// any other PC/SC call.
    pub fn new(lab: Lab) -> Arc<LabControl> {
        std::env::set_var(crate::SOCKET_ENV, lab.socket_path());
        Arc::new(LabControl {
            readers: lab.readers().to_vec(),
            socket: lab.socket_path(),
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

    /// Inserts a fresh default-applet card into reader `index` (removing the one there) and
    /// waits until pcscd sees it.
    pub fn insert(&self, index: usize) -> Result<(), String> {
        let mut state = self.lock();
        let reader = self.reader(index)?;
        if let Some(old) = state.cards[index].take().filter(VirtualCard::is_inserted) {
            old.remove();
            self.wait(reader, false)?;
            thread::sleep(SETTLE);
        }
        let card = VirtualCard::with_default_applet();
        card.insert(reader.port);
        state.cards[index] = Some(card);
        self.wait(reader, true)
    }

    /// Removes the card of reader `index`, if any, and waits until pcscd sees the reader empty.
    pub fn remove(&self, index: usize) -> Result<(), String> {
        let state = self.lock();
        let reader = self.reader(index)?;
        if let Some(card) = &state.cards[index] {
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
            if card.as_ref().is_some_and(VirtualCard::is_inserted) {
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
            .map(VirtualCard::counters)
            .ok_or_else(|| format!("no card was ever inserted in reader {index}"))
    }

    /// The last lines of the daemon's output.
    pub fn log_tail(&self) -> String {
        self.lock().lab.as_ref().map(Lab::log_tail).unwrap_or_default()
    }

    /// Removes every card and stops the lab (its temp dir goes too); later requests fail.
    pub fn close(&self) {
        let mut state = self.lock();
        for card in state.cards.iter().flatten() {
            card.remove();
        }
        state.lab = None;
    }

    /// Listens on a free port of 127.0.0.1 and serves the control channel there from
    /// background threads, for as long as the process lives. Returns the address.
    pub fn serve(self: &Arc<Self>) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let address = listener.local_addr()?;
        let control = Arc::clone(self);
        thread::Builder::new().name("scm-lab-control".into()).spawn(move || {
            for stream in listener.incoming().flatten() {
                let control = Arc::clone(&control);
                let _ = thread::Builder::new()
                    .name("scm-lab-control-conn".into())
                    .spawn(move || control.converse(stream));
            }
        })?;
        Ok(address)
    }

    /// Answers the requests of one connection until it closes.
    fn converse(&self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else {
                return;
            };
            let reply = match self.answer(line.trim_end_matches('\r')) {
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

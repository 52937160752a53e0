//! A private `pcscd` with virtual `vpcd` readers.
//!
//! `pcscd` 1.9.9 always listens on `/run/pcscd/pcscd.comm`, so each lab runs its daemon in a
//! private mount namespace where the lab's temp dir is bind-mounted on `/run/pcscd`. Clients
//! reach it through `PCSCLITE_CSOCK_NAME=<dir>/pcscd.comm`.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// pcsc-lite serves at most 16 readers (`PCSCLITE_MAX_READERS_CONTEXTS`), two per `vpcd` entry.
pub const MAX_PAIRS: usize = 8;

/// The longest `FRIENDLYNAME`: pcsc-lite's reader names are at most 128 bytes with the NUL, and
/// pcscd appends `" 00 00"`; a longer name would be cut, possibly inside a UTF-8 sequence.
pub const MAX_FRIENDLY_LEN: usize = 100;

/// How long a start or restart may take before it is reported as failed.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How often readiness is checked while waiting.
const POLL: Duration = Duration::from_millis(10);
/// Fresh ports to try when another process grabbed ours between probing and the daemon's bind.
const START_ATTEMPTS: usize = 3;
/// Reader ports come from here: below Linux's ephemeral range (32768..61000 by default), so the
/// outgoing connections of cards, tests and everything else on the machine never take one of
/// them between our probe and the daemon's bind.
const PORT_RANGE: std::ops::Range<u16> = 20000..32000;
/// Lines of daemon output that [`Lab::log_tail`] returns.
const LOG_TAIL_LINES: usize = 40;

const DRIVER_CANDIDATES: &[&str] =
    &["/usr/lib/pcsc/drivers/serial/libifdvpcd.so", "/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so"];

/// One virtual reader of a [`Lab`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reader {
    /// The name PC/SC lists, e.g. `"Lab A 00 01"`.
    pub name: String,
    /// The TCP port a [`crate::VirtualCard`] connects to in order to be inserted.
    pub port: u16,
}

/// A private `pcscd` with `2 * pairs` virtual `vpcd` readers.
///
/// Dropping it kills the daemon and removes its temp dir.
#[derive(Debug)]
pub struct Lab {
    dir: PathBuf,
    conf_dir: PathBuf,
    log_path: PathBuf,
    pcscd: PathBuf,
    unshare: PathBuf,
    /// The `FRIENDLYNAME` of each entry, from which pcscd names its two readers: bytes, since
    /// pcscd takes a name that is not UTF-8 as well.
    friendly: Vec<Vec<u8>>,
    /// The `CHANNELID` of each entry; slot 0 listens there and slot 1 on the next port.
    base_ports: Vec<u16>,
    readers: Vec<Reader>,
    child: Option<Child>,
}

impl Lab {
    /// Starts a private daemon with `2 * pairs` readers (`1 <= pairs <= 8`) and waits until
    /// every reader is up.
    ///
    /// The lab lives in a fresh temp dir under [`std::env::temp_dir`]: one `reader.conf.d`
    /// entry per pair (`"Lab A"`, `"Lab B"`, ...), each with its own copy of `libifdvpcd.so`
    /// (the driver keeps its sockets in a global array, and a shared copy would make the entries
    /// steal each other's slots), on ports free on 127.0.0.1 and 0.0.0.0 right now.
    ///
    /// Readiness is judged without any PC/SC call, because libpcsclite reads
    /// `PCSCLITE_CSOCK_NAME` only once per process and a call here would pin this process to
    /// whatever daemon the variable names at that moment. pcscd opens the readers of its
    /// config folder before its socket, so the lab is ready when the socket accepts and the
    /// daemon itself holds a listening socket on every reader port.
    ///
    /// Fails with a clear error when not root, when `unshare`, `pcscd` or the `vpcd` driver is
    /// missing, or when the daemon is not ready within 15 s (the error carries its log tail).
    pub fn start(pairs: usize) -> io::Result<Lab> {
        Lab::start_named(pairs, &[])
    }

    /// Like [`start`](Self::start), with pair `k` named `name` for each `(k, name)` of
    /// `friendly` instead of `"Lab A"`, `"Lab B"`, ...: its readers are `"<name> 00 00"` and
    /// `"<name> 00 01"`.
    ///
    /// The name is written to `reader.conf.d` as UTF-8 and pcscd passes its bytes through
    /// unchanged, so a reader name outside ASCII is possible. A name must be non-empty, unique,
    /// at most [`MAX_FRIENDLY_LEN`] bytes, and free of `"` and control characters (the config
    /// syntax has no escapes).
    pub fn start_named(pairs: usize, friendly: &[(usize, String)]) -> io::Result<Lab> {
        let friendly: Vec<(usize, Vec<u8>)> =
            friendly.iter().map(|(pair, name)| (*pair, name.clone().into_bytes())).collect();
        Lab::start_named_bytes(pairs, &friendly)
    }

    /// Like [`start_named`](Self::start_named), with names as bytes written to `reader.conf.d`
    /// unchanged: a name that is not UTF-8 (a driver's Latin-1 name, say) gives readers whose
    /// names PC/SC lists as those bytes, for testing what callers make of them. Their
    /// [`Reader::name`] is the lossy UTF-8 decoding (U+FFFD for each invalid sequence).
    pub fn start_named_bytes(pairs: usize, friendly: &[(usize, Vec<u8>)]) -> io::Result<Lab> {
        if pairs == 0 || pairs > MAX_PAIRS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a lab has 1 to {MAX_PAIRS} reader pairs (pcsc-lite serves at most 16 readers), not {pairs}"),
            ));
        }
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("the PC/SC lab must run as root (it bind-mounts /run/pcscd in a private mount namespace); effective uid is {euid}"),
            ));
        }
        let unshare = find_program("unshare", "util-linux")?;
        let pcscd = find_program("pcscd", "pcscd")?;
        let driver = DRIVER_CANDIDATES.iter().map(Path::new).find(|p| p.exists()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "the vpcd reader driver libifdvpcd.so is missing: apt-get install -y vsmartcard-vpcd",
            )
        })?;
        // pcscd needs the mount point to exist; creating it in the host namespace is harmless.
        fs::create_dir_all("/run/pcscd")?;
        remove_stale_dirs();

        let friendly = friendly_names(pairs, friendly)?;
        let dir = new_lab_dir()?;
        let conf_dir = dir.join("reader.conf.d");
        let driver_dir = dir.join("drivers");
        fs::create_dir(&conf_dir)?;
        fs::create_dir(&driver_dir)?;
        let mut lab = Lab {
            log_path: dir.join("pcscd.log"),
            dir,
            conf_dir,
            pcscd,
            unshare,
            friendly,
            base_ports: Vec::new(),
            readers: Vec::new(),
            child: None,
        };
        for pair in 0..pairs {
            fs::copy(driver, lab.driver_copy(pair))?;
        }

        let mut attempt = 0;
        loop {
            attempt += 1;
            lab.base_ports = reserve_ports(pairs)?;
            lab.write_config()?;
            match lab.launch(Instant::now() + START_TIMEOUT) {
                Ok(()) => return Ok(lab),
                Err(LaunchError::PortsTaken(_)) if attempt < START_ATTEMPTS => {
                    lab.stop();
                    release_ports(&std::mem::take(&mut lab.base_ports));
                }
                Err(e) => return Err(lab.failure(e)),
            }
        }
    }

    /// The value for `PCSCLITE_CSOCK_NAME`: the daemon's socket as seen from outside its
    /// namespace.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("pcscd.comm")
    }

    /// The readers, entry by entry and slot by slot (`Lab A 00 00`, `Lab A 00 01`, `Lab B ...`).
    pub fn readers(&self) -> &[Reader] {
        &self.readers
    }

    /// The lab's temp dir (config, driver copies, daemon log, socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True while the daemon process is alive.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILLs the daemon and reaps it: a crash, as far as clients and cards can tell.
    pub fn kill(&mut self) {
        self.stop();
    }

    /// Kills the daemon if it runs, removes the stale socket and pid files, and starts it again
    /// with the same config and ports, waiting (up to 15 s) until every reader is up again.
    ///
    /// Contexts established before keep failing with `SCARD_E_NO_SERVICE`; establish new ones.
    /// Inserted [`crate::VirtualCard`]s reconnect by themselves.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.append_log("--- scm-lab: restarting pcscd ---\n");
            match self.launch(deadline) {
                Ok(()) => return Ok(()),
                // The ports are ours by config; if something still holds one, wait it out.
                Err(LaunchError::PortsTaken(_)) if Instant::now() < deadline => {
                    self.stop();
                    thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(self.failure(e)),
            }
        }
    }

    /// Restarts the daemon (as [`restart`](Self::restart)) with `pairs` reader pairs instead:
    /// the pairs kept have the same names and ports, new ones are `"Lab <letter>"` on new ports,
    /// and dropped ones are gone. To PC/SC clients, readers are added or removed.
    ///
    /// pcscd 1.9.9 reads its serial readers' config only at start-up (its rescan signal does
    /// nothing on a udev build), so a restart is how a `vpcd` reader comes or goes.
    pub fn restart_with_pairs(&mut self, pairs: usize) -> io::Result<()> {
        if pairs == 0 || pairs > MAX_PAIRS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("1 to {MAX_PAIRS} reader pairs, not {pairs}"),
            ));
        }
        let had = self.base_ports.len();
        if pairs > had {
            let driver = DRIVER_CANDIDATES.iter().map(Path::new).find(|p| p.exists()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "the vpcd reader driver libifdvpcd.so is gone")
            })?;
            for pair in had..pairs {
                fs::copy(driver, self.driver_copy(pair))?;
                self.friendly.push(format!("Lab {}", pair_letter(pair)).into_bytes());
            }
            self.base_ports.extend(reserve_ports(pairs - had)?);
        } else {
            release_ports(&self.base_ports.split_off(pairs));
            self.friendly.truncate(pairs);
        }
        self.stop();
        self.write_config()?;
        self.restart()
    }

    /// The last lines of the daemon's stdout and stderr.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path, LOG_TAIL_LINES)
    }

    fn driver_copy(&self, pair: usize) -> PathBuf {
        self.dir.join("drivers").join(format!("libifdvpcd-{}.so", pair_letter(pair)))
    }

    /// Writes all entries into one file: pcscd reads the files of its config folder in
    /// directory order, which is arbitrary, but the entries of one file in order, and a fixed
    /// reader order keeps lists and logs comparable between runs.
    fn write_config(&mut self) -> io::Result<()> {
        self.readers.clear();
        let mut config = Vec::new();
        for (pair, (friendly, &port)) in self.friendly.iter().zip(&self.base_ports).enumerate() {
            config.extend_from_slice(b"FRIENDLYNAME \"");
            config.extend_from_slice(friendly);
            config.extend_from_slice(
                format!(
                    "\"\nDEVICENAME /dev/null:0x{port:X}\nLIBPATH {}\nCHANNELID 0x{port:X}\n\n",
                    self.driver_copy(pair).display()
                )
                .as_bytes(),
            );
            let friendly = String::from_utf8_lossy(friendly);
            for slot in 0..2u16 {
                self.readers.push(Reader { name: format!("{friendly} 00 {slot:02X}"), port: port + slot });
            }
        }
        fs::write(self.conf_dir.join("lab.conf"), config)
    }

    /// Spawns the daemon and waits until it is ready or `deadline` passes.
    fn launch(&mut self, deadline: Instant) -> Result<(), LaunchError> {
        // A pid file or socket left by a killed daemon would make the new one refuse to start
        // or leave clients talking to a dead socket.
        for stale in ["pcscd.comm", "pcscd.pid"] {
            let _ = fs::remove_file(self.dir.join(stale));
        }
        let log = File::options().create(true).append(true).open(&self.log_path).map_err(LaunchError::Io)?;
        let mut command = Command::new(&self.unshare);
        command
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$1" /run/pcscd && exec "$2" -f -c "$3""#)
            .arg("scm-lab-pcscd")
            .arg(&self.dir)
            .arg(&self.pcscd)
            .arg(&self.conf_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(LaunchError::Io)?)
            .stderr(log);
        self.child = Some(spawn_tied_to_process(command).map_err(LaunchError::Io)?);

        let mut socket_seen: Option<Instant> = None;
        loop {
            let child = self.child.as_mut().expect("just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                return Err(LaunchError::Exited(status.to_string()));
            }
            let pid = child.id();
            if UnixStream::connect(self.socket_path()).is_ok() {
                let missing = self.ports_not_listening(pid);
                if missing.is_empty() {
                    return Ok(());
                }
                // The readers are opened before the socket, so missing ports mean the driver
                // could not bind them. A short grace period only guards against /proc lag.
                let seen = *socket_seen.get_or_insert_with(Instant::now);
                if seen.elapsed() > Duration::from_millis(300) {
                    return Err(LaunchError::PortsTaken(missing));
                }
            }
            if Instant::now() >= deadline {
                return Err(LaunchError::Timeout);
            }
            thread::sleep(POLL);
        }
    }

    /// Reader ports on which the daemon (pid `pid`) holds no listening socket.
    fn ports_not_listening(&self, pid: u32) -> Vec<u16> {
        let listening = listening_inodes();
        let owned = socket_inodes(pid);
        self.readers
            .iter()
            .map(|r| r.port)
            .filter(|port| {
                !listening.get(port).is_some_and(|inodes| inodes.iter().any(|i| owned.contains(i)))
            })
            .collect()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn append_log(&self, line: &str) {
        use std::io::Write;
        if let Ok(mut f) = File::options().create(true).append(true).open(&self.log_path) {
            let _ = f.write_all(line.as_bytes());
        }
    }

    /// Turns a launch failure into the error reported to the caller, with the daemon's log.
    fn failure(&mut self, error: LaunchError) -> io::Error {
        self.stop();
        let (kind, what) = match error {
            LaunchError::Io(e) => (e.kind(), format!("cannot run {}: {e}", self.unshare.display())),
            LaunchError::Exited(status) => {
                (io::ErrorKind::Other, format!("pcscd (via unshare) exited during start-up with {status}"))
            }
            LaunchError::PortsTaken(ports) => (
                io::ErrorKind::AddrInUse,
                format!("pcscd came up without reader ports {ports:?} (taken by another process?)"),
            ),
            LaunchError::Timeout => (
                io::ErrorKind::TimedOut,
                format!(
                    "pcscd did not bring up its {} readers within {} s",
                    self.readers.len(),
                    START_TIMEOUT.as_secs()
                ),
            ),
        };
        io::Error::new(
            kind,
            format!(
                "PC/SC lab in {}: {what}\n--- daemon log tail ---\n{}",
                self.dir.display(),
                self.log_tail()
            ),
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop();
        release_ports(&self.base_ports);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

enum LaunchError {
    Io(io::Error),
    Exited(String),
    PortsTaken(Vec<u16>),
    Timeout,
}

fn pair_letter(pair: usize) -> char {
    char::from(b'A' + pair as u8)
}

/// The `FRIENDLYNAME` of every pair: the default `"Lab A"`, `"Lab B"`, ... unless overridden.
fn friendly_names(pairs: usize, overrides: &[(usize, Vec<u8>)]) -> io::Result<Vec<Vec<u8>>> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    let mut names: Vec<Vec<u8>> =
        (0..pairs).map(|pair| format!("Lab {}", pair_letter(pair)).into_bytes()).collect();
    for (pair, name) in overrides {
        let slot = names
            .get_mut(*pair)
            .ok_or_else(|| invalid(format!("no reader pair {pair} in a lab of {pairs}")))?;
        // Bytes that are not UTF-8 become U+FFFD here, which is no control character.
        let text = String::from_utf8_lossy(name);
        if name.is_empty()
            || name.len() > MAX_FRIENDLY_LEN
            || name.contains(&b'"')
            || text.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "reader pair name {text:?}: 1 to {MAX_FRIENDLY_LEN} bytes, no '\"' and no control characters"
            )));
        }
        name.clone_into(slot);
    }
    // pcscd numbers readers of the same name apart (`00`, `01`, ...), which would make the names
    // this lab predicts wrong.
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(invalid(format!("two reader pairs named {:?}", String::from_utf8_lossy(name))));
        }
    }
    Ok(names)
}

/// Finds `name` on PATH or in the sbin dirs a non-login root shell may lack.
fn find_program(name: &str, package: &str) -> io::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{name}` not found; the PC/SC lab needs it: apt-get install -y {package}"),
            )
        })
}

/// Temp dirs are named `scm-lab-<pid>-<n>`: unique per process and lab.
fn new_lab_dir() -> io::Result<PathBuf> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("scm-lab-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir)?;
    Ok(dir)
}

/// Removes the temp dirs of labs whose process is gone (killed before it could clean up), so
/// interrupted test runs do not accumulate driver copies and logs.
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("scm-lab-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Base ports taken by labs of this process, so two labs started at the same time cannot pick
/// the same ports before either daemon has bound them.
fn reserved() -> &'static Mutex<HashSet<u16>> {
    static RESERVED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    RESERVED.get_or_init(Default::default)
}

/// Picks `pairs` base ports whose port and port+1 are both free right now, starting at a spot
/// seeded by pid and clock so that concurrent processes rarely probe the same ports.
fn reserve_ports(pairs: usize) -> io::Result<Vec<u16>> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let seed = std::process::id().wrapping_mul(2_654_435_761) ^ nanos;
    let slots = u32::from((PORT_RANGE.end - PORT_RANGE.start) / 2);
    let mut reserved = reserved().lock().unwrap_or_else(PoisonError::into_inner);
    let mut chosen = Vec::with_capacity(pairs);
    for step in 0..slots {
        let base = PORT_RANGE.start + (((seed.wrapping_add(step)) % slots) * 2) as u16;
        if !reserved.contains(&base) && port_free(base) && port_free(base + 1) {
            reserved.insert(base);
            chosen.push(base);
            if chosen.len() == pairs {
                return Ok(chosen);
            }
        }
    }
    for base in &chosen {
        reserved.remove(base);
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, format!("no {pairs} free port pairs in {PORT_RANGE:?}")))
}

fn release_ports(bases: &[u16]) {
    let mut reserved = reserved().lock().unwrap_or_else(PoisonError::into_inner);
    for base in bases {
        reserved.remove(base);
    }
}

/// The driver listens on all interfaces; a port is usable only if both binds succeed.
fn port_free(port: u16) -> bool {
    [Ipv4Addr::LOCALHOST, Ipv4Addr::UNSPECIFIED].iter().all(|ip| TcpListener::bind((*ip, port)).is_ok())
}

/// Listening TCP sockets by local port, as socket inodes.
fn listening_inodes() -> HashMap<u16, Vec<u64>> {
    let mut map: HashMap<u16, Vec<u64>> = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
            if fields.len() < 10 || fields[3] != "0A" {
                continue;
            }
            let port = fields[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if let (Some(port), Ok(inode)) = (port, fields[9].parse()) {
                map.entry(port).or_default().push(inode);
            }
        }
    }
    map
}

/// The inodes of the sockets process `pid` has open.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The last `lines` lines of a file, read from its end so a chatty daemon costs nothing.
fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(64 * 1024);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

type SpawnRequest = (Command, Sender<io::Result<Child>>);

/// Spawns `command` so that it is SIGKILLed if this process dies, even without running any
/// destructor (a test binary killed by Ctrl-C must not leave daemons behind).
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked exits, and test harness threads are
/// short-lived, so all daemons are forked by one thread that lives as long as the process.
fn spawn_tied_to_process(mut command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("scm-lab-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawning the lab's spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("the lab's spawner thread is gone"))?;
    reply_rx.recv().map_err(|_| io::Error::other("the lab's spawner thread is gone"))?
}

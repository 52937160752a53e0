//! Windows programs under Wine against the lab: the private prefix and the lab's DLLs in it.
//!
//! Debian's Wine 8.0 has a stub for `winscard.dll` and no `bcryptprimitives.dll`; the lab's
//! own (built from `lab/windows/` by its `build.sh`) are put into a private prefix's system
//! folder, where `WINEDLLOVERRIDES=winscard=n` makes Wine load the native one. Creating a
//! prefix takes seconds, so the first run makes a template under the repository's `target/`
//! and every run copies it with hard links (the registry files, which Wine rewrites, are real
//! copies; the lab's DLLs replace their links).

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Debian's Wine: `wine64` is not on `PATH`.
const WINE_DIR: &str = "/usr/lib/wine";

/// A Windows architecture the lab runs programs of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// 64-bit: `x86_64-pc-windows-gnu`, run by `wine64`.
    X86_64,
    /// 32-bit: `i686-pc-windows-gnu`, run by Debian's `wine32` package.
    I686,
}

impl Arch {
    /// `"x86_64"` or `"i686"`, as `lab/windows/build.sh` and the mingw compilers name them.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::I686 => "i686",
        }
    }

    /// The architecture called `name`, if any.
    pub fn from_name(name: &str) -> Option<Arch> {
        [Arch::X86_64, Arch::I686].into_iter().find(|a| a.name() == name)
    }

    /// Where a prefix keeps the system DLLs of this architecture.
    fn system_dir(self) -> &'static str {
        match self {
            Arch::X86_64 => "drive_c/windows/system32",
            Arch::I686 => "drive_c/windows/syswow64",
        }
    }

    /// The Wine loader for programs of this architecture, or why there is none.
    fn loader(self) -> io::Result<PathBuf> {
        let (file, package) = match self {
            Arch::X86_64 => ("wine64", "wine64"),
            Arch::I686 => ("wine", "wine32:i386 (after dpkg --add-architecture i386)"),
        };
        let path = Path::new(WINE_DIR).join(file);
        if path.is_file() {
            Ok(path)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is missing, so {} Windows programs cannot run here: apt-get install -y {package}",
                    path.display(),
                    self.name()
                ),
            ))
        }
    }
}

/// The repository's `target/`, where `build.sh` puts the DLLs and the prefix template lives.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target")
}

/// Builds the lab's Windows DLLs for `arch` if they are not up to date (`lab/windows/build.sh`)
/// and returns their folder.
pub fn build_dlls(arch: Arch) -> io::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("windows").join("build.sh");
    let output = Command::new("bash").arg(&script).arg(arch.name()).stderr(Stdio::inherit()).output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{} {} failed ({})",
            script.display(),
            arch.name(),
            output.status
        )));
    }
    let folder = String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().to_string();
    Ok(PathBuf::from(folder))
}

/// A Wine prefix private to one run, removed (with its wineserver) on drop.
#[derive(Debug)]
pub struct Prefix {
    dir: PathBuf,
    loader: PathBuf,
    arch: Arch,
}

impl Prefix {
    /// A fresh prefix for `arch` programs with the lab's DLLs (from `dlls`) in its system folder.
    pub fn create(arch: Arch, dlls: &Path) -> io::Result<Prefix> {
        let loader = arch.loader()?;
        let template = template()?;
        // Beside the template: hard links cannot cross file systems.
        let runs = template.with_file_name("runs");
        fs::create_dir_all(&runs)?;
        remove_stale_prefixes(&runs);
        let dir = runs.join(format!("{}-{}", std::process::id(), unique()));
        let _ = fs::remove_dir_all(&dir);
        run(Command::new("cp").arg("-al").arg(&template).arg(&dir))?;
        let prefix = Prefix { dir, loader, arch };
        for entry in fs::read_dir(&template)?.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().ends_with(".reg") {
                let copy = prefix.dir.join(&name);
                fs::remove_file(&copy)?;
                fs::copy(entry.path(), copy)?;
            }
        }
        let system = prefix.dir.join(arch.system_dir());
        for dll in ["winscard.dll", "bcryptprimitives.dll"] {
            // Unlinked first: writing through the hard link would change the template.
            let _ = fs::remove_file(system.join(dll));
            fs::copy(dlls.join(dll), system.join(dll))?;
        }
        Ok(prefix)
    }

    /// The prefix's folder (`WINEPREFIX`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Wine's own program called `name` (`cmd`, `cscript`, `regsvr32`, `reg`..., with or
    /// without `.exe`) as this prefix's Windows path to it, or `None` when `name` is a path or
    /// no such program is in the prefix's system folder. Given by its full path: Wine looks for
    /// a bare name in the current folder first, so a `cmd.exe` there would run instead.
    pub fn system_program(&self, name: &Path) -> Option<String> {
        let name = name.to_str().filter(|n| !n.is_empty() && !n.contains(['/', '\\', ':']))?;
        // Windows names ignore case; the prefix's files are lower case.
        let name = name.to_ascii_lowercase();
        let file = if name.ends_with(".exe") { name } else { format!("{name}.exe") };
        let system = self.arch.system_dir();
        self.dir
            .join(system)
            .join(&file)
            .is_file()
            .then(|| format!("C:\\{}\\{file}", system.trim_start_matches("drive_c/").replace('/', "\\")))
    }

    /// A command running `program` (a Windows executable) with `args` in this prefix, quiet,
    /// with the lab's `winscard.dll` and `dll_dirs` prepended to the Windows `PATH`.
    pub fn command(&self, program: &Path, dll_dirs: &[PathBuf]) -> Command {
        let mut command = Command::new(&self.loader);
        command.arg(program);
        command.env("WINEPREFIX", &self.dir).env("WINEDEBUG", "-all").env("WINEDLLOVERRIDES", OVERRIDES);
        // Wine reads the Unix environment in the locale's charset: under the C locale a
        // non-ASCII SCM_LAB_READER would reach the program mangled. (The ANSI code page stays
        // what the locale's language makes it.)
        if !utf8_locale() {
            command.env("LC_ALL", "C.UTF-8");
        }
        if !dll_dirs.is_empty() {
            let windows: Vec<String> = dll_dirs.iter().map(|d| windows_path(d)).collect();
            command.env("WINEPATH", windows.join(";"));
        }
        command
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        // The wineserver outlives the program by a few seconds and holds the prefix.
        let _ = Command::new(Path::new(WINE_DIR).join("wineserver"))
            .arg("-k")
            .env("WINEPREFIX", &self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes the prefixes of runs whose process is gone (killed before it could clean up).
fn remove_stale_prefixes(runs: &Path) {
    for entry in fs::read_dir(runs).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.split('-').next()).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The native `winscard.dll`; no Mono or Gecko installers (a headless prefix needs neither).
const OVERRIDES: &str = "winscard=n;mscoree=;mshtml=";

/// Whether the locale in effect for a child (`LC_ALL`, else `LC_CTYPE`, else `LANG`) is UTF-8.
fn utf8_locale() -> bool {
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        .unwrap_or_default()
        .to_ascii_lowercase();
    locale.contains("utf-8") || locale.contains("utf8")
}

/// A Unix path as Wine's `Z:` drive (the root folder) shows it.
fn windows_path(path: &Path) -> String {
    let absolute = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("Z:{}", absolute.display()).replace('/', "\\")
}

fn unique() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

fn run(command: &mut Command) -> io::Result<()> {
    let status = command.stdout(Stdio::null()).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{command:?} failed ({status})")))
    }
}

/// The prefix template, made on first use: one per Wine version and set of installed
/// architectures (a prefix made without 32-bit Wine has no `syswow64`).
fn template() -> io::Result<PathBuf> {
    let wine64 = Arch::X86_64.loader()?;
    let version = Command::new(&wine64).arg("--version").output()?;
    let version = String::from_utf8_lossy(&version.stdout)
        .trim()
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "-");
    let wow64 = if Arch::I686.loader().is_ok() { "-wow64" } else { "" };
    let root = target_dir().join("lab-windows");
    let template = root.join(format!("prefix-{version}{wow64}"));
    if template.join("system.reg").is_file() {
        return Ok(template);
    }
    fs::create_dir_all(&root)?;
    // Parallel tests on a fresh machine wait for one wineboot instead of each running one.
    let lock = File::create(root.join("prefix.lock"))?;
    // SAFETY: flock on an open descriptor; the lock goes with the file when it is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if template.join("system.reg").is_file() {
        return Ok(template);
    }
    let building = root.join(format!("prefix-building-{}-{}", std::process::id(), unique()));
    let _ = fs::remove_dir_all(&building);
    let made = run(Command::new(&wine64)
        .args(["wineboot", "--init"])
        .env("WINEPREFIX", &building)
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", OVERRIDES)
        .stderr(Stdio::null()))
    .and_then(|()| {
        // wineboot returns before the wineserver has written the registry to disk.
        run(Command::new(Path::new(WINE_DIR).join("wineserver")).arg("-w").env("WINEPREFIX", &building))
    });
    if let Err(e) = made {
        let _ = fs::remove_dir_all(&building);
        return Err(io::Error::other(format!("creating a Wine prefix failed: {e}")));
    }
    fs::rename(&building, &template)?;
    if template.join("system.reg").is_file() {
        Ok(template)
    } else {
        Err(io::Error::other(format!("the Wine prefix template {} has no registry", template.display())))
    }
}

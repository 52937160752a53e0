//! The code `scm verify` sends: typed at the terminal with echo off, or one line of stdin.
//! Never an argument, where `ps` and the shell's history would show it.

use std::fmt;
use std::io::{self, IsTerminal, Read};
use std::ptr;
use std::sync::atomic::{compiler_fence, Ordering};

/// The longest code read: what fits the data of a short VERIFY command.
pub const MAX_LEN: usize = 255;

/// A code in memory, overwritten when dropped. Boxed, so that it is never moved (a move would
/// leave a copy behind); read byte by byte, so that no reader's buffer keeps one either.
pub struct Pin {
    bytes: Box<[u8; MAX_LEN]>,
    len: usize,
}

impl Pin {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        for byte in self.bytes.iter_mut() {
            // SAFETY: a valid, exclusive reference; volatile so the wipe is not optimized away.
            unsafe { ptr::write_volatile(byte, 0) };
        }
        compiler_fence(Ordering::SeqCst);
    }
}

pub enum Error {
    Io(io::Error),
    Empty,
    TooLong,
    /// Stdin is a terminal where this tool cannot turn echo off.
    #[cfg(not(unix))]
    NoTerminal,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "cannot read the PIN: {e}"),
            Error::Empty => f.write_str("no PIN given (an empty line or no input)"),
            Error::TooLong => write!(f, "the PIN is longer than {MAX_LEN} bytes"),
            #[cfg(not(unix))]
            Error::NoTerminal => f.write_str(
                "reading a PIN with echo off needs a Unix terminal here: give it on stdin instead",
            ),
        }
    }
}

/// The code: from the terminal (`/dev/tty`) with echo off after `prompt` when stdin is a
/// terminal, else the first line of stdin. The line's end (`\n`, `\r\n`) is not part of it.
pub fn read(prompt: &str) -> Result<Pin, Error> {
    if !io::stdin().is_terminal() {
        return read_line(&mut stdin());
    }
    #[cfg(unix)]
    return terminal::read(prompt);
    #[cfg(not(unix))]
    {
        let _ = prompt;
        Err(Error::NoTerminal)
    }
}

/// Stdin without the standard library's buffer, which would keep a copy of the code.
#[cfg(unix)]
fn stdin() -> impl Read {
    struct Unbuffered;
    impl Read for Unbuffered {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            // SAFETY: `buf.len()` writable bytes; descriptor 0 is the process's stdin.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            usize::try_from(n).map_err(|_| io::Error::last_os_error())
        }
    }
    Unbuffered
}

#[cfg(not(unix))]
fn stdin() -> impl Read {
    io::stdin()
}

/// One line, byte by byte, up to its end or the end of the input.
fn read_line(input: &mut impl Read) -> Result<Pin, Error> {
    let mut pin = Pin { bytes: Box::new([0; MAX_LEN]), len: 0 };
    let mut byte = 0u8;
    let ended = loop {
        match input.read(std::slice::from_mut(&mut byte)) {
            Ok(0) => break Ok(()),
            Ok(_) if byte == b'\n' => break Ok(()),
            Ok(_) if pin.len == MAX_LEN => break Err(Error::TooLong),
            Ok(_) => {
                pin.bytes[pin.len] = byte;
                pin.len += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(Error::Io(e)),
        }
    };
    // SAFETY: a valid, exclusive reference; it may hold one of the code's bytes.
    unsafe { ptr::write_volatile(&mut byte, 0) };
    ended?;
    if pin.as_bytes().last() == Some(&b'\r') {
        pin.len -= 1;
        pin.bytes[pin.len] = 0;
    }
    if pin.len == 0 {
        return Err(Error::Empty);
    }
    Ok(pin)
}

#[cfg(unix)]
pub use terminal::{restore, resume, suspend};

#[cfg(unix)]
mod terminal {
    use std::fs::File;
    use std::io::{self, Write};
    use std::mem::MaybeUninit;
    use std::os::fd::AsRawFd;
    use std::sync::{Mutex, PoisonError};

    use super::{read_line, Error, Pin};

    /// The terminal's settings while echo is off, for [`restore`] to put back.
    static SAVED: Mutex<Option<(i32, libc::termios)>> = Mutex::new(None);

    /// Puts the terminal's echo back if this process turned it off. Called on the way out
    /// whatever the way: the end of the read, or a signal that ends the process at the prompt.
    pub fn restore() {
        if let Some((fd, settings)) = SAVED.lock().unwrap_or_else(PoisonError::into_inner).take() {
            // SAFETY: `fd` is the terminal, open while SAVED holds it; `settings` came from it.
            unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &settings) };
        }
    }

    /// Ctrl-Z at the prompt: stops the process with the terminal's echo back on, for the shell
    /// that gets it back; what was typed of the PIN is dropped, not left for the shell to read.
    pub fn suspend() {
        if let Some((fd, settings)) = *SAVED.lock().unwrap_or_else(PoisonError::into_inner) {
            // SAFETY: as in `restore`.
            unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &settings) };
        }
        // SAFETY: stopping this process; SIGSTOP cannot be caught, so this is Ctrl-Z's default.
        unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
    }

    /// SIGCONT: echo off again if the prompt is still waiting. Shells put their own settings
    /// back when a job stops (whatever stopped it), and `fg` does not undo that: the PIN typed
    /// next would be shown.
    pub fn resume() {
        if let Some((fd, settings)) = *SAVED.lock().unwrap_or_else(PoisonError::into_inner) {
            // SAFETY: as in `restore`.
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet(settings)) };
        }
    }

    /// `settings` with the typed characters not shown; the Enter that ends them still is, so
    /// what is printed next starts on a line of its own.
    fn quiet(mut settings: libc::termios) -> libc::termios {
        settings.c_lflag &= !libc::ECHO;
        settings.c_lflag |= libc::ECHONL;
        settings
    }

    pub fn read(prompt: &str) -> Result<Pin, Error> {
        let mut tty = File::options().read(true).write(true).open("/dev/tty").map_err(Error::Io)?;
        let fd = tty.as_raw_fd();
        // SAFETY: termios is plain data; tcgetattr fills it in.
        let mut settings = unsafe { MaybeUninit::<libc::termios>::zeroed().assume_init() };
        // SAFETY: an open terminal descriptor and a valid termios.
        if unsafe { libc::tcgetattr(fd, &mut settings) } != 0 {
            return Err(Error::Io(io::Error::last_os_error()));
        }
        let mut saved = SAVED.lock().unwrap_or_else(PoisonError::into_inner);
        *saved = Some((fd, settings));
        // SAFETY: as above.
        let quieted = unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet(settings)) };
        // Held until echo is off: a stop signal's restore between saving and turning echo off
        // would find echo still on, and the process would exit with it turned off after all.
        drop(saved);
        let result = if quieted != 0 {
            Err(Error::Io(io::Error::last_os_error()))
        } else {
            tty.write_all(prompt.as_bytes())
                .and_then(|()| tty.flush())
                .map_err(Error::Io)
                .and_then(|()| read_line(&mut tty))
        };
        restore();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(input: &[u8]) -> Result<Vec<u8>, Error> {
        read_line(&mut &input[..]).map(|pin| pin.as_bytes().to_vec())
    }

    #[test]
    fn one_line_is_read_without_its_end() {
        assert_eq!(line(b"1234\nrest").ok(), Some(b"1234".to_vec()));
        assert_eq!(line(b"1234\r\n").ok(), Some(b"1234".to_vec()));
        assert_eq!(line(b"12 34").ok(), Some(b"12 34".to_vec()));
        assert_eq!(line(&[b'9'; MAX_LEN]).ok(), Some(vec![b'9'; MAX_LEN]));
        assert!(matches!(line(&[b'9'; MAX_LEN + 1]), Err(Error::TooLong)));
        assert!(matches!(line(b""), Err(Error::Empty)));
        assert!(matches!(line(b"\n1234\n"), Err(Error::Empty)));
        assert!(matches!(line(b"\r\n"), Err(Error::Empty)));
    }
}

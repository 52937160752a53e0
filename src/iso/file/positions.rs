//! The files an object has open, each with its position, and the seek arithmetic: plain Rust,
//! no card involved.

use crate::hresult::*;
use crate::scard::Result;

/// How many files one object keeps open at once; one more is `SCM_E_OUTOFMEMORY`.
pub(crate) const MAX_OPEN_FILES: usize = 16;
/// The largest position: the largest offset the library writes into an offset data object
/// (four bytes). A record file's positions count records.
pub(crate) const MAX_POSITION: u64 = u32::MAX as u64;

/// Where a seek counts from (`SCM_SEEK_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Beginning,
    End,
    Relative,
}

impl Origin {
    /// The caller's `SCM_SEEK_*` value; anything else is `SCM_E_INVALIDARG`.
    pub fn from_c(origin: u32) -> Result<Origin> {
        match origin {
            0 => Ok(Origin::Beginning),
            1 => Ok(Origin::End),
            2 => Ok(Origin::Relative),
            _ => Err(SCM_E_INVALIDARG),
        }
    }
}

/// A new position, or `SCM_SCARD_E_BAD_SEEK` when it would fall before the start or past
/// [`MAX_POSITION`], or when seeking from the end of a file whose end the card did not say
/// (`end` is `None`). The arithmetic cannot overflow.
pub fn seek(position: u64, origin: Origin, offset: i64, end: Option<u64>) -> Result<u64> {
    let base = match origin {
        Origin::Beginning => 0,
        Origin::End => end.ok_or(SCM_SCARD_E_BAD_SEEK)?,
        Origin::Relative => position,
    };
    base.checked_add_signed(offset).filter(|&new| new <= MAX_POSITION).ok_or(SCM_SCARD_E_BAD_SEEK)
}

/// How many bytes a read of up to `room` bytes at `position` of a transparent file asks for:
/// no more than the file's `size` (when known) leaves, nor past [`MAX_POSITION`].
/// `SCM_SCARD_W_EOF` when the read starts at the end: the size, or one past [`MAX_POSITION`]
/// (where reading or writing the last byte leaves the position).
pub fn readable(position: u64, size: Option<u64>, room: usize) -> Result<usize> {
    if position > MAX_POSITION {
        return Err(SCM_SCARD_W_EOF);
    }
    let mut want = (room as u64).min(MAX_POSITION + 1 - position);
    if let Some(size) = size {
        if position >= size {
            return Err(SCM_SCARD_W_EOF);
        }
        want = want.min(size - position);
    }
    Ok(want as usize)
}

/// A table of open files keyed by the numbers handed to the caller: never 0, not reused while
/// the table could still hold the file that had it.
#[derive(Debug)]
pub struct OpenFiles<T> {
    files: Vec<(u32, T)>,
    last: u32,
}

impl<T> Default for OpenFiles<T> {
    fn default() -> Self {
        OpenFiles { files: Vec::new(), last: 0 }
    }
}

impl<T> OpenFiles<T> {
    /// Whether [`MAX_OPEN_FILES`] are open.
    pub fn is_full(&self) -> bool {
        self.files.len() >= MAX_OPEN_FILES
    }

    /// Keeps a file open; `SCM_E_OUTOFMEMORY` when [`MAX_OPEN_FILES`] are.
    pub fn open(&mut self, file: T) -> Result<u32> {
        if self.is_full() {
            return Err(SCM_E_OUTOFMEMORY);
        }
        // The next number that is neither 0 nor in use: at most MAX_OPEN_FILES + 1 tries.
        let mut number = self.last;
        loop {
            number = number.wrapping_add(1);
            if number != 0 && self.files.iter().all(|(open, _)| *open != number) {
                break;
            }
        }
        self.last = number;
        self.files.push((number, file));
        Ok(number)
    }

    /// The open file with that number; `SCM_E_HANDLE` for a number not open.
    pub fn get(&mut self, number: u32) -> Result<&mut T> {
        self.files.iter_mut().find(|(open, _)| *open == number).map(|(_, file)| file).ok_or(SCM_E_HANDLE)
    }

    /// Forgets an open file; `SCM_E_HANDLE` for a number not open.
    pub fn close(&mut self, number: u32) -> Result<()> {
        let index = self.files.iter().position(|(open, _)| *open == number).ok_or(SCM_E_HANDLE)?;
        self.files.swap_remove(index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeks_stay_within_the_positions() {
        assert_eq!(seek(10, Origin::Beginning, 5, None), Ok(5));
        assert_eq!(seek(10, Origin::Relative, -4, None), Ok(6));
        assert_eq!(seek(10, Origin::Relative, -10, None), Ok(0));
        assert_eq!(seek(10, Origin::Relative, -11, None), Err(SCM_SCARD_E_BAD_SEEK));
        assert_eq!(seek(10, Origin::End, -1, Some(40_000)), Ok(39_999));
        assert_eq!(seek(10, Origin::End, 7, Some(40_000)), Ok(40_007));
        assert_eq!(seek(10, Origin::End, 0, None), Err(SCM_SCARD_E_BAD_SEEK));
        assert_eq!(seek(0, Origin::Beginning, -1, None), Err(SCM_SCARD_E_BAD_SEEK));
        assert_eq!(seek(0, Origin::Beginning, i64::MAX, None), Err(SCM_SCARD_E_BAD_SEEK));
        assert_eq!(seek(0, Origin::Beginning, MAX_POSITION as i64, None), Ok(MAX_POSITION));
        assert_eq!(seek(MAX_POSITION, Origin::Relative, 1, None), Err(SCM_SCARD_E_BAD_SEEK));
        assert_eq!(seek(MAX_POSITION, Origin::Relative, i64::MIN, None), Err(SCM_SCARD_E_BAD_SEEK));
        assert_eq!(seek(5, Origin::End, i64::MIN, Some(u64::MAX)), Err(SCM_SCARD_E_BAD_SEEK));
        assert_eq!(seek(5, Origin::End, i64::MAX, Some(u64::MAX)), Err(SCM_SCARD_E_BAD_SEEK));
        assert_eq!(Origin::from_c(3), Err(SCM_E_INVALIDARG));
        assert_eq!(Origin::from_c(u32::MAX), Err(SCM_E_INVALIDARG));
        assert_eq!(Origin::from_c(1), Ok(Origin::End));
    }

    #[test]
    fn reads_stop_at_the_size_and_at_the_last_position() {
        assert_eq!(readable(0, Some(40_000), 100), Ok(100));
        assert_eq!(readable(39_990, Some(40_000), 100), Ok(10));
        assert_eq!(readable(40_000, Some(40_000), 100), Err(SCM_SCARD_W_EOF));
        assert_eq!(readable(7, None, 0), Ok(0), "nothing asked, nothing to send");
        assert_eq!(readable(MAX_POSITION, None, 100), Ok(1));
        // Reading the byte at MAX_POSITION moves the position one past it: the end of what
        // the library can address, so a read there is EOF, never a success of 0 bytes that
        // a read-until-EOF loop would repeat forever.
        assert_eq!(readable(MAX_POSITION + 1, None, 100), Err(SCM_SCARD_W_EOF));
        assert_eq!(readable(MAX_POSITION + 1, Some(u64::MAX), 100), Err(SCM_SCARD_W_EOF));
    }

    #[test]
    fn the_table_is_bounded_and_numbers_are_not_reused_at_once() {
        let mut files = OpenFiles::default();
        let numbers: Vec<u32> = (0..MAX_OPEN_FILES).map(|i| files.open(i).unwrap()).collect();
        assert!(!numbers.contains(&0));
        assert!(files.is_full());
        assert_eq!(files.open(99), Err(SCM_E_OUTOFMEMORY));
        assert_eq!(*files.get(numbers[3]).unwrap(), 3);
        assert_eq!(files.close(numbers[3]), Ok(()));
        assert_eq!(files.close(numbers[3]), Err(SCM_E_HANDLE));
        assert_eq!(files.get(numbers[3]).map(|f| *f), Err(SCM_E_HANDLE));
        let again = files.open(42).unwrap();
        assert!(!numbers.contains(&again));
        assert_eq!(files.get(0).map(|f| *f), Err(SCM_E_HANDLE));
    }

    #[test]
    fn numbers_skip_zero_and_open_ones_when_they_wrap() {
        let mut files = OpenFiles { files: Vec::new(), last: u32::MAX - 1 };
        let a = files.open('a').unwrap();
        let b = files.open('b').unwrap();
        assert_eq!((a, b), (u32::MAX, 1));
        files.last = 0;
        assert_eq!(files.open('c'), Ok(2), "1 is still open");
    }
}

//! ISO/IEC 7816-4 on top of the manager: APDU encoding, the transport that collects answers
//! (GET RESPONSE, Le correction, command chaining, extended length), the status-word table, a
//! BER-TLV reader for what cards return, and the service provider objects of `ISCardManage`'s
//! factories (file access, card holder verification, card authentication).
//!
//! Everything here that reads a card's answer treats it as untrusted: the parsers are total
//! over `&[u8]` and return a documented code for whatever a card could send.

pub mod apdu;
pub mod auth;
pub mod chv;
pub mod ef_atr;
pub mod file;
#[cfg(test)]
pub(crate) mod fuzz;
pub mod sw;
pub mod tlv;
pub mod transport;

use crate::hresult::*;

/// A card's answer that breaks the rules of the exchange: shorter than a status word, more data
/// than the command's Le allowed, a GET RESPONSE chain past what an extended APDU carries (or
/// past [`transport::MAX_ROUNDS`] rounds), or a wrong-length correction (6Cxx) repeated past
/// [`transport::MAX_LE_FIXES`], or a piece of a chained command answered with anything but
/// `90 00` or a refusal. The answer is dropped.
pub(crate) const BROKEN_EXCHANGE: scm_hresult = SCM_SCARD_E_COMM_DATA_LOST;

/// Data from the card that should be BER-TLV (an FCP, a template) and is not: a length that runs
/// past the data, an indefinite or over-long length, a tag of more than four bytes, nesting
/// deeper than [`tlv::MAX_DEPTH`], or a field of the wrong size.
pub(crate) const MALFORMED_DATA: scm_hresult = SCM_SCARD_E_UNEXPECTED;

/// An object that works on a manager's card, which it names by the manager's token: it follows
/// the manager through reconnection and re-attachment, and is refused once the manager is gone.
pub trait Child {
    fn manager(&self) -> usize;
}

impl Child for file::FileAccess {
    fn manager(&self) -> usize {
        self.manager
    }
}

impl Child for chv::Chv {
    fn manager(&self) -> usize {
        self.manager
    }
}

impl Child for auth::Auth {
    fn manager(&self) -> usize {
        self.manager
    }
}

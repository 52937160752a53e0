//! One manager: the state machine of `ISCardManage`, in plain Rust.
//!
//! A manager is unattached, attached to a reader (its own context, with or without a card
//! connected), or attached to a card handle the caller owns (borrowed: never disconnected here).
//! Any attachment with a card may additionally hold the card's lock (a PC/SC transaction).

use std::ffi::CString;
use std::sync::Arc;

use pcsc::ffi;

use crate::hresult::*;
use crate::iso::transport::IsoSession;
use crate::scard::{self, CardHandle, Context, Result};
use crate::spare_contexts;
use crate::wait::{Observation, Seen, Waits};

/// How the card is shared with other connections (COM and PC/SC values agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareMode {
    Exclusive,
    Shared,
    Direct,
}

impl ShareMode {
    pub fn from_abi(value: u32) -> Result<ShareMode> {
        match value {
            1 => Ok(ShareMode::Exclusive),
            2 => Ok(ShareMode::Shared),
            3 => Ok(ShareMode::Direct),
            _ => Err(SCM_E_INVALIDARG),
        }
    }

    fn native(self) -> ffi::DWORD {
        match self {
            ShareMode::Exclusive => ffi::SCARD_SHARE_EXCLUSIVE,
            ShareMode::Shared => ffi::SCARD_SHARE_SHARED,
            ShareMode::Direct => ffi::SCARD_SHARE_DIRECT,
        }
    }
}

/// What happens to the card when a connection or a lock ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Leave,
    Reset,
    Unpower,
    Eject,
}

impl Disposition {
    pub fn from_abi(value: u32) -> Result<Disposition> {
        match value {
            0 => Ok(Disposition::Leave),
            1 => Ok(Disposition::Reset),
            2 => Ok(Disposition::Unpower),
            3 => Ok(Disposition::Eject),
            _ => Err(SCM_E_INVALIDARG),
        }
    }

    fn native(self) -> ffi::DWORD {
        match self {
            Disposition::Leave => ffi::SCARD_LEAVE_CARD,
            Disposition::Reset => ffi::SCARD_RESET_CARD,
            Disposition::Unpower => ffi::SCARD_UNPOWER_CARD,
            Disposition::Eject => ffi::SCARD_EJECT_CARD,
        }
    }
}

/// Validated preferred protocols, as the COM value (T0 1, T1 2, both 3, RAW 0xFF, none 0).
/// "None" is what PC/SC allows for a direct connection only.
pub fn protocols_from_abi(value: u32, share_mode: ShareMode) -> Result<u32> {
    match value {
        1..=3 | 0xFF => Ok(value),
        0 if share_mode == ShareMode::Direct => Ok(value),
        _ => Err(SCM_E_INVALIDARG),
    }
}

/// A live card connection and the protocol it runs.
#[derive(Debug, Clone, Copy)]
struct Connection {
    handle: CardHandle,
    protocol: ffi::DWORD,
}

/// An attachment to a reader through a context of the manager's own, so that a call blocked on
/// it (a lock waiting for another holder) stalls no other manager.
#[derive(Debug)]
struct ReaderLink {
    context: Context,
    reader: CString,
    share_mode: ShareMode,
    protocols: u32,
    /// None while the reader holds no card that could be connected.
    card: Option<Connection>,
}

/// A card handle the caller connected, and how to reconnect it without changing what the
/// caller asked for: PC/SC cannot report a handle's share mode, so it is read off the reader's
/// state when the handle is attached and at each reconnect; `None` while that could not be
/// learnt (see [`BorrowedLink::reconnect`]).
#[derive(Debug)]
struct BorrowedLink {
    card: Connection,
    share_mode: Option<ShareMode>,
    protocols: u32,
}

#[derive(Debug)]
enum Link {
    Reader(ReaderLink),
    Borrowed(BorrowedLink),
}

#[derive(Debug)]
struct Attachment {
    link: Link,
    locked: bool,
}

#[derive(Debug, Default)]
pub struct Manager {
    attachment: Option<Attachment>,
    /// What the ISO transport learnt of the connected card, and its reusable buffers.
    pub(crate) iso: IsoSession,
    /// Waits in progress and what the manager last saw of its card (`wait.rs`).
    waits: Arc<Waits>,
}

/// Codes after which a card handle is worth nothing more and a new connection is needed:
/// besides the service and the card, the reader itself may have gone (unplugged: pcsc-lite
/// answers READER_UNAVAILABLE, or INVALID_VALUE for a handle on a vanished reader).
fn needs_new_connection(code: scm_hresult) -> bool {
    scard::is_service_lost(code)
        || scard::is_card_absent(code)
        || matches!(
            code,
            SCM_SCARD_W_UNPOWERED_CARD
                | SCM_SCARD_W_UNRESPONSIVE_CARD
                | SCM_SCARD_W_UNSUPPORTED_CARD
                | SCM_SCARD_E_READER_UNAVAILABLE
                | SCM_SCARD_E_INVALID_VALUE
        )
}

/// The share mode of a borrowed handle: its reader held exclusively can only be held by that
/// very handle. Asked through a context of our own. `None` when it cannot be learnt, e.g. while
/// the handle has a removal or reset to report (PC/SC then gives no reader name for it).
fn borrowed_share_mode(handle: CardHandle) -> Option<ShareMode> {
    let reader = CString::new(handle.reader_name().ok()?).ok()?;
    let state = spare_contexts::with_spare(|context| context.reader_state(&reader)).ok()?;
    Some(match state & ffi::SCARD_STATE_EXCLUSIVE != 0 {
        true => ShareMode::Exclusive,
        false => ShareMode::Shared,
    })
}

impl ReaderLink {
    /// Connects the card, re-establishing the context first if the service behind it is gone
    /// (pcsc-lite answers every call on a context that outlived its daemon with NO_SERVICE).
    fn connect_card(&mut self) -> Result<()> {
        let share_mode = self.share_mode.native();
        let protocols = scard::protocols_to_native(self.protocols);
        let attempt = match self.context.connect(&self.reader, share_mode, protocols) {
            Err(code) if scard::is_service_lost(code) => {
                self.context = Context::establish()?;
                self.context.connect(&self.reader, share_mode, protocols)
            }
            attempt => attempt,
        };
        // Windows answers a connect to an empty reader with W_REMOVED_CARD, pcsc-lite with
        // NO_SMARTCARD: callers get the documented NO_SMARTCARD on both.
        let (handle, protocol) = attempt.map_err(|code| match scard::is_card_absent(code) {
            true => SCM_SCARD_E_NO_SMARTCARD,
            false => code,
        })?;
        self.card = Some(Connection { handle, protocol });
        Ok(())
    }

    fn reconnect(&mut self) -> Result<()> {
        if let Some(card) = self.card {
            let protocols = scard::protocols_to_native(self.protocols);
            match card.handle.reconnect(self.share_mode.native(), protocols, ffi::SCARD_LEAVE_CARD) {
                Ok(protocol) => {
                    self.card = Some(Connection { handle: card.handle, protocol });
                    return Ok(());
                }
                Err(code) if !needs_new_connection(code) => return Err(code),
                Err(code) => {
                    if !scard::is_service_lost(code) {
                        // Best effort: the handle is useless, only its record is freed.
                        let _ = card.handle.disconnect(
                            ffi::SCARD_LEAVE_CARD,
                            self.share_mode.native(),
                            protocols,
                        );
                    }
                    self.card = None;
                }
            }
        }
        self.connect_card()
    }
}

/// What the readers' states say of a borrowed handle whose own reader is unknown: with no
/// reader held exclusively it is shared; with every reader in use held exclusively it is
/// exclusive (a shared handle keeps its reader in use and not exclusive); otherwise nothing.
fn share_mode_from_all_readers() -> Result<Option<ShareMode>> {
    spare_contexts::with_spare(|context| {
        let (mut exclusive, mut shared) = (false, false);
        let names = context.list_readers()?;
        for name in names.split(|&byte| byte == 0).filter(|name| !name.is_empty()) {
            let name = CString::new(name).map_err(|_| SCM_E_UNEXPECTED)?;
            let state = context.reader_state(&name)?;
            exclusive |= state & ffi::SCARD_STATE_EXCLUSIVE != 0;
            shared |= state & (ffi::SCARD_STATE_INUSE | ffi::SCARD_STATE_EXCLUSIVE) == ffi::SCARD_STATE_INUSE;
        }
        Ok(match (exclusive, shared) {
            (false, _) => Some(ShareMode::Shared),
            (true, false) => Some(ShareMode::Exclusive),
            (true, true) => None,
        })
    })
}

impl BorrowedLink {
    /// Reconnects leaving the card, in the handle's own share mode, never a guessed one: a
    /// wrong guess either way hurts (pcsc-lite 1.9.9 leaves an EXCLUSIVE handle reconnected
    /// SHARED holding the card's lock, so every new connection waits forever; a shared handle
    /// reconnected EXCLUSIVE shuts other programs out). The mode is asked anew, as the owner may
    /// have reconnected its handle in another one since; when the handle cannot name its reader,
    /// the mode last learnt is used, else it is read off all the readers' states; if it still
    /// cannot be told, the handle is left alone and the code that hides its reader (a reset or
    /// removal to report) is returned.
    fn reconnect(&mut self) -> Result<()> {
        let handle = self.card.handle;
        let share_mode = match borrowed_share_mode(handle).or(self.share_mode) {
            Some(mode) => mode,
            None => match share_mode_from_all_readers()? {
                Some(mode) => mode,
                None => return Err(handle.status().err().unwrap_or(SCM_E_UNEXPECTED)),
            },
        };
        let protocols = scard::protocols_to_native(self.protocols);
        self.card.protocol = handle.reconnect(share_mode.native(), protocols, ffi::SCARD_LEAVE_CARD)?;
        self.share_mode = Some(share_mode);
        Ok(())
    }
}

impl Manager {
    pub fn is_attached(&self) -> bool {
        self.attachment.is_some()
    }

    fn attachment(&mut self) -> Result<&mut Attachment> {
        self.attachment.as_mut().ok_or(SCM_E_NOT_ATTACHED)
    }

    fn unattached(&self) -> Result<()> {
        match self.attachment {
            None => Ok(()),
            Some(_) => Err(SCM_E_NOT_ATTACHED),
        }
    }

    /// The connected card, or NO_SMARTCARD for a reader whose card is not connected.
    fn connection(&mut self) -> Result<Connection> {
        match &self.attachment()?.link {
            Link::Reader(link) => link.card.ok_or(SCM_SCARD_E_NO_SMARTCARD),
            Link::Borrowed(link) => Ok(link.card),
        }
    }

    /// Attaches to a reader; a reader with no card attaches too.
    pub fn attach_reader(&mut self, reader: CString, share_mode: ShareMode, protocols: u32) -> Result<()> {
        self.unattached()?;
        let mut link =
            ReaderLink { context: spare_contexts::take()?, reader, share_mode, protocols, card: None };
        match link.connect_card() {
            Ok(()) => {}
            // Only an empty reader attaches without a card: a card that is there but cannot be
            // connected (mute, unpowered) is reported, so that nobody mistakes it for absence.
            Err(code) if scard::is_card_absent(code) => {}
            Err(code) => return Err(code),
        }
        self.waits.relinked(match link.card {
            Some(_) => Seen::Connection,
            None => Seen::of_reader(&link.context, &link.reader),
        });
        self.attachment = Some(Attachment { link: Link::Reader(link), locked: false });
        Ok(())
    }

    /// Attaches to a handle the caller connected; it stays the caller's.
    pub fn attach_handle(&mut self, handle: CardHandle) -> Result<()> {
        self.unattached()?;
        let protocol = match handle.status() {
            Ok(status) => status.protocol,
            Err(SCM_SCARD_E_INVALID_HANDLE) => return Err(SCM_E_INVALIDARG),
            Err(code) if scard::is_service_lost(code) => return Err(code),
            // A reset or removed card: the handle is still the caller's valid handle, and
            // `reconnect` will learn the protocol.
            Err(_) => ffi::SCARD_PROTOCOL_UNDEFINED,
        };
        let share_mode = borrowed_share_mode(handle);
        // Keep a raw connection raw; otherwise let PC/SC pick T=0 or T=1, as a reset or
        // swapped card may need the other one.
        let protocols = match protocol {
            ffi::SCARD_PROTOCOL_RAW => 0xFF,
            _ => 3,
        };
        let card = Connection { handle, protocol };
        let link = Link::Borrowed(BorrowedLink { card, share_mode, protocols });
        self.attachment = Some(Attachment { link, locked: false });
        self.waits.relinked(Seen::Connection);
        Ok(())
    }

    pub fn reconnect(&mut self) -> Result<()> {
        self.iso.forget_card();
        let attachment = self.attachment()?;
        let result = match &mut attachment.link {
            Link::Reader(link) => link.reconnect(),
            Link::Borrowed(link) => link.reconnect(),
        };
        if result.is_ok() {
            self.waits.relinked(Seen::Connection);
        }
        let attachment = self.attachment()?;
        // A reconnected handle starts without a lock. The transaction may have survived on the
        // handle (pcsc-lite keeps it across a reset it could not report), so end it.
        if std::mem::take(&mut attachment.locked) {
            if let Ok(card) = self.connection() {
                let _ = card.handle.end_transaction(ffi::SCARD_LEAVE_CARD);
            }
        }
        result
    }

    /// Ends the attachment whatever PC/SC answers; reports PC/SC's failure to release the card
    /// as asked, if any.
    pub fn detach(&mut self, disposition: Disposition) -> Result<()> {
        self.iso.forget_card();
        let attachment = self.attachment()?;
        if matches!(attachment.link, Link::Borrowed(_)) && disposition != Disposition::Leave {
            return Err(SCM_E_INVALIDARG);
        }
        let attachment = self.attachment.take().ok_or(SCM_E_NOT_ATTACHED)?;
        self.waits.relinked(Seen::Nothing);
        let card = match &attachment.link {
            Link::Reader(link) => link.card,
            Link::Borrowed(link) => Some(link.card),
        };
        let mut result = Ok(());
        if let Some(card) = card {
            // The lock ends first, so a borrowed handle goes back to its owner unlocked. For our
            // own connection the disconnect ends the transaction anyway, and its answer alone
            // says whether the card was released as asked.
            let lock_ended = match attachment.locked {
                true => card.handle.end_transaction(ffi::SCARD_LEAVE_CARD),
                false => Ok(()),
            };
            result = match &attachment.link {
                Link::Reader(link) => card.handle.disconnect(
                    disposition.native(),
                    link.share_mode.native(),
                    scard::protocols_to_native(link.protocols),
                ),
                Link::Borrowed(_) => lock_ended,
            };
        }
        if let Link::Reader(link) = attachment.link {
            match result {
                // A context whose service is gone is only released.
                Err(code) if scard::is_service_lost(code) => {}
                _ => spare_contexts::keep(link.context),
            }
        }
        result
    }

    pub fn lock(&mut self) -> Result<()> {
        let card = self.connection()?;
        let attachment = self.attachment()?;
        if !attachment.locked {
            card.handle.begin_transaction()?;
            attachment.locked = true;
        }
        Ok(())
    }

    pub fn unlock(&mut self, disposition: Disposition) -> Result<()> {
        if !self.attachment()?.locked {
            return Err(SCM_SCARD_E_NOT_TRANSACTED);
        }
        let card = self.connection()?;
        let attachment = self.attachment()?;
        let result = card.handle.end_transaction(disposition.native());
        match result {
            // The transaction is gone with the card or the service; a reset reported here may
            // leave it in place, and `reconnect` ends it then.
            Ok(()) => attachment.locked = false,
            Err(code) if scard::is_service_lost(code) || scard::is_card_absent(code) => {
                attachment.locked = false
            }
            Err(SCM_SCARD_W_RESET_CARD | SCM_SCARD_W_UNPOWERED_CARD) => {}
            // PC/SC could not carry out the disposition (pcsc-lite cannot eject, and releases the
            // transaction all the same): end the lock anyway, so that no lock is believed held
            // that PC/SC has already let go. NOT_TRANSACTED here only means it was gone already.
            Err(_) => {
                let _ = card.handle.end_transaction(ffi::SCARD_LEAVE_CARD);
                attachment.locked = false;
            }
        }
        result
    }

    /// The card's state and protocol, as COM values.
    pub fn status(&mut self) -> Result<(u32, u32)> {
        let attachment = self.attachment()?;
        let card = match &attachment.link {
            Link::Reader(ReaderLink { card: None, context, reader, .. }) => {
                let state = context.reader_state(reader)?;
                self.waits.looked(Seen::Reader(Observation::here(state)));
                return Ok((scard::reader_state_to_com(state), 0));
            }
            Link::Reader(ReaderLink { card: Some(card), .. }) | Link::Borrowed(BorrowedLink { card, .. }) => {
                *card
            }
        };
        let status = card.handle.status()?;
        self.waits.looked(Seen::Connection);
        Ok((scard::card_state_to_com(status.state, status.protocol), scard::protocol_to_com(status.protocol)))
    }

    /// The connected card and the protocol it runs: `scm_transmit` hands PC/SC the caller's
    /// buffers directly, under this manager's lock.
    pub fn transmit_target(&mut self) -> Result<(CardHandle, ffi::DWORD)> {
        let card = self.connection()?;
        Ok((card.handle, card.protocol))
    }

    pub fn atr(&mut self) -> Result<([u8; 36], usize)> {
        self.connection()?.handle.atr()
    }

    /// The attached reader's name, without a NUL.
    pub fn reader_name(&mut self) -> Result<Vec<u8>> {
        match &self.attachment()?.link {
            Link::Reader(link) => Ok(link.reader.as_bytes().to_vec()),
            Link::Borrowed(link) => link.card.handle.reader_name(),
        }
    }

    pub fn card_handle(&mut self) -> Result<CardHandle> {
        Ok(self.connection()?.handle)
    }

    /// The connected card, its protocol and the ISO transport's state for it: the transport
    /// (`iso::transport`) runs its exchanges through these, under this manager's lock.
    pub fn iso_parts(&mut self) -> Result<(CardHandle, ffi::DWORD, &mut IsoSession)> {
        let card = self.connection()?;
        Ok((card.handle, card.protocol, &mut self.iso))
    }

    pub fn waits(&self) -> &Arc<Waits> {
        &self.waits
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // A wait in progress ends before the manager does.
        self.waits.close();
        if self.is_attached() {
            let _ = self.detach(Disposition::Leave);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_inputs_are_validated() {
        assert_eq!(ShareMode::from_abi(2), Ok(ShareMode::Shared));
        assert_eq!(ShareMode::from_abi(0), Err(SCM_E_INVALIDARG));
        assert_eq!(ShareMode::from_abi(4), Err(SCM_E_INVALIDARG));
        assert_eq!(Disposition::from_abi(3), Ok(Disposition::Eject));
        assert_eq!(Disposition::from_abi(4), Err(SCM_E_INVALIDARG));
        assert_eq!(Disposition::from_abi(u32::MAX), Err(SCM_E_INVALIDARG));
        assert_eq!(protocols_from_abi(3, ShareMode::Shared), Ok(3));
        assert_eq!(protocols_from_abi(0xFF, ShareMode::Exclusive), Ok(0xFF));
        assert_eq!(protocols_from_abi(0, ShareMode::Shared), Err(SCM_E_INVALIDARG));
        assert_eq!(protocols_from_abi(0, ShareMode::Direct), Ok(0));
        assert_eq!(protocols_from_abi(4, ShareMode::Direct), Err(SCM_E_INVALIDARG));
    }

    #[test]
    fn an_unattached_manager_refuses_card_operations() {
        let mut manager = Manager::default();
        assert_eq!(manager.status(), Err(SCM_E_NOT_ATTACHED));
        assert_eq!(manager.lock(), Err(SCM_E_NOT_ATTACHED));
        assert_eq!(manager.unlock(Disposition::Leave), Err(SCM_E_NOT_ATTACHED));
        assert_eq!(manager.reconnect(), Err(SCM_E_NOT_ATTACHED));
        assert_eq!(manager.detach(Disposition::Leave), Err(SCM_E_NOT_ATTACHED));
        assert_eq!(manager.card_handle(), Err(SCM_E_NOT_ATTACHED));
        assert_eq!(manager.reader_name(), Err(SCM_E_NOT_ATTACHED));
        assert_eq!(manager.transmit_target(), Err(SCM_E_NOT_ATTACHED));
    }
}

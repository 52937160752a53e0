//! The WinSCard bridge's relay (`scardmanage_lab::bridge`) against frames its Windows side
//! would never send: each ends its own connection only, without a crash, a hang or an
//! allocation of the size it claims, and the relay goes on serving others. In a test binary
//! of its own: the relay calls this process's libpcsclite, pointed at the shared lab.

use scardmanage_lab::{bridge, lease, shared, wait_card};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const ESTABLISH: u32 = 1;
const LIST_READERS: u32 = 4;
const CONNECT: u32 = 6;
const STATUS_CHANGE: u32 = 12;
const TRANSMIT: u32 = 14;

/// One connection to the relay.
struct Relay(TcpStream);

impl Relay {
    fn connect(address: SocketAddr) -> Relay {
        let stream = TcpStream::connect(address).unwrap();
        // A relay that hangs fails the test instead of stopping it.
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Relay(stream)
    }

    /// Sends `body` as a frame whose length says `length`.
    fn send_claiming(&mut self, length: u32, body: &[u8]) {
        let mut frame = length.to_le_bytes().to_vec();
        frame.extend_from_slice(body);
        self.0.write_all(&frame).unwrap();
    }

    fn call(&mut self, body: &[u8]) -> Vec<u8> {
        self.send_claiming(body.len() as u32, body);
        let mut length = [0u8; 4];
        self.0.read_exact(&mut length).expect("a reply");
        let mut reply = vec![0u8; u32::from_le_bytes(length) as usize];
        self.0.read_exact(&mut reply).unwrap();
        reply
    }

    /// Whether the relay closed the connection (rather than answering or hanging).
    fn closed(mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.0.read(&mut byte), Ok(0))
    }

    /// A connection with an established context.
    fn established(address: SocketAddr) -> Relay {
        let mut relay = Relay::connect(address);
        let reply = relay.call(&words(&[ESTABLISH, 2]));
        assert_eq!(u32_at(&reply, 0), 0, "ESTABLISH");
        relay
    }
}

fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn u32_at(reply: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(reply[at..at + 4].try_into().unwrap())
}

#[test]
fn malformed_frames_end_their_connection_only() {
    let lab = shared();
    let lease = lease();
    lease.insert();
    assert!(wait_card(lease.name(), true, Duration::from_secs(10)), "{}", lab.log_tail());
    let address = bridge::serve().unwrap();

    // A frame longer than any request (4 GiB): refused before anything is allocated.
    let mut huge = Relay::connect(address);
    huge.send_claiming(u32::MAX, &[]);
    assert!(huge.closed(), "a 4 GiB frame");

    // A frame that ends early, then the connection closes: the relay's thread just ends.
    let mut short = Relay::connect(address);
    short.send_claiming(100, &words(&[ESTABLISH]));
    drop(short);

    // A call before ESTABLISH.
    let mut early = Relay::connect(address);
    early.send_claiming(4, &words(&[LIST_READERS]));
    assert!(early.closed(), "LIST_READERS without a context");

    // SCardGetStatusChange claiming 2^31 readers in a 12-byte request.
    let mut lying = Relay::established(address);
    lying.send_claiming(12, &words(&[STATUS_CHANGE, 0, 0x8000_0000]));
    assert!(lying.closed(), "a reader count the request cannot hold");

    // A command whose byte count runs past the end of its frame.
    let mut card = Relay::established(address);
    let mut connect = words(&[CONNECT, lease.name().len() as u32]);
    connect.extend_from_slice(lease.name().as_bytes());
    connect.extend_from_slice(&words(&[2, 2]));
    let reply = card.call(&connect);
    assert_eq!(u32_at(&reply, 0), 0, "CONNECT");
    let handle = &reply[4..12];
    // A capacity of 4 GiB is served within pcsc-lite's largest response.
    let mut transmit = words(&[TRANSMIT]);
    transmit.extend_from_slice(handle);
    transmit.extend_from_slice(&words(&[2, 8, 0x0000_1080, 0x00FE_CA02, u32::MAX]));
    let reply = card.call(&transmit);
    assert_eq!(u32_at(&reply, 0), 0, "TRANSMIT");
    assert_eq!(&reply[12..], [0xCA, 0xFE, 0x90, 0x00], "ECHO's response");
    let mut past = words(&[TRANSMIT]);
    past.extend_from_slice(handle);
    past.extend_from_slice(&words(&[2, 1000, 0]));
    card.send_claiming(past.len() as u32, &past);
    assert!(card.closed(), "a command running past its frame");

    // The relay still serves a well-formed connection.
    let mut good = Relay::established(address);
    let reply = good.call(&words(&[LIST_READERS]));
    assert_eq!(u32_at(&reply, 0), 0, "LIST_READERS");
    assert_eq!(u32_at(&reply, 4) as usize, lab.readers().len());
}

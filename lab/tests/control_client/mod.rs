//! `scm-lab run` as the test binaries that run it see it: the program it runs reports the
//! environment it got and waits for its exit code; the control channel's client.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};

/// A running `scm-lab run` whose program waits for an exit code on its stdin.
pub struct Run {
    pub child: Child,
    /// `PCSCLITE_CSOCK_NAME`, `SCM_LAB_CONTROL`, `SCM_LAB_READER` as the program got them.
    pub socket: String,
    pub control: String,
    pub reader: String,
}

impl Run {
    /// Runs `scm-lab run OPTIONS -- <a program reporting its environment>`.
    pub fn start(options: &[&str]) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scm-lab"))
            .arg("run")
            .args(options)
            .args(["--", "bash", "-c", r#"printf '%s\n' "$PCSCLITE_CSOCK_NAME" "$SCM_LAB_CONTROL" "$SCM_LAB_READER"; read -r code; exit "$code""#])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("running scm-lab");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines().map(Result::unwrap);
        let (socket, control, reader) = (lines.next().unwrap(), lines.next().unwrap(), lines.next().unwrap());
        Run { child, socket, control, reader }
    }

    /// The program's stdin: a line with a number ends it with that exit code.
    pub fn stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().unwrap()
    }
}

/// One connection to the control channel.
pub struct Control {
    pub writer: TcpStream,
    pub reader: BufReader<TcpStream>,
}

impl Control {
    pub fn connect(address: &str) -> Control {
        let writer = TcpStream::connect(address).expect("connecting to SCM_LAB_CONTROL");
        let reader = BufReader::new(writer.try_clone().unwrap());
        Control { writer, reader }
    }

    pub fn ask(&mut self, request: &str) -> String {
        writeln!(self.writer, "{request}").unwrap();
        let mut reply = String::new();
        self.reader.read_line(&mut reply).unwrap();
        eprintln!("{request} -> {}", reply.trim_end());
        reply.trim_end_matches('\n').to_string()
    }
}

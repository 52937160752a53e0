//! What the subcommands print, as text for people and as JSON for scripts.
//!
//! The JSON is written by hand: a few flat shapes of strings, numbers and null do not need
//! serde's compile time. Field names are part of the interface (documented in `scm help`).

use std::fmt::Write;

use crate::library::Verdict;

use scardmanage::{
    SCM_EVENT_CARD_INSERTED, SCM_EVENT_CARD_REMOVED, SCM_EVENT_READER_ADDED, SCM_EVENT_READER_REMOVED,
    SCM_PROTOCOL_RAW, SCM_PROTOCOL_T0, SCM_PROTOCOL_T1, SCM_PROTOCOL_UNDEFINED, SCM_STATE_ABSENT,
    SCM_STATE_NEGOTIABLE, SCM_STATE_POWERED, SCM_STATE_PRESENT, SCM_STATE_SPECIFIC, SCM_STATE_SWALLOWED,
    SCM_STATE_UNKNOWN,
};

pub struct Status<'a> {
    pub reader: &'a str,
    pub state: u32,
    pub protocol: u32,
    /// None when no card is connected.
    pub atr: Option<&'a [u8]>,
}

pub struct Verification<'a> {
    pub reader: &'a str,
    pub reference: u8,
    pub verdict: Verdict,
}

pub struct Exchange {
    pub command: Vec<u8>,
    pub response: Vec<u8>,
}

pub fn readers(names: &[String], json: bool) -> String {
    if json {
        let items: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(index, name)| format!("{{\"index\":{index},\"name\":{}}}", string(name)))
            .collect();
        return format!("{{\"readers\":[{}]}}\n", items.join(","));
    }
    if names.is_empty() {
        return "no readers\n".into();
    }
    names.iter().enumerate().fold(String::new(), |mut out, (index, name)| {
        let _ = writeln!(out, "#{index}  {name}");
        out
    })
}

pub fn status(status: &Status, json: bool) -> String {
    let state = state_name(status.state);
    let protocol = protocol_name(status.protocol);
    if json {
        let atr = status.atr.map_or("null".to_string(), |atr| format!("\"{}\"", hex(atr, "")));
        return format!(
            "{{\"reader\":{},\"state\":\"{state}\",\"protocol\":\"{protocol}\",\"atr\":{atr}}}\n",
            string(status.reader)
        );
    }
    let atr = status.atr.map_or("none (no card connected)".to_string(), |atr| hex(atr, " "));
    format!("reader:   {}\nstate:    {state}\nprotocol: {protocol}\nATR:      {atr}\n", status.reader)
}

/// One exchange as two lines, `>` the command and `<` the answer.
pub fn exchange_text(command: &[u8], response: &[u8]) -> String {
    format!("> {}\n< {}\n", hex(command, " "), hex(response, " "))
}

pub fn exchanges_json(reader: &str, exchanges: &[Exchange]) -> String {
    let items: Vec<String> = exchanges
        .iter()
        .map(|e| {
            let sw = match e.response.len() {
                n if n >= 2 => format!("\"{}\"", hex(&e.response[n - 2..], "")),
                _ => "null".into(),
            };
            format!(
                "{{\"command\":\"{}\",\"response\":\"{}\",\"sw\":{sw}}}",
                hex(&e.command, ""),
                hex(&e.response, "")
            )
        })
        .collect();
    format!("{{\"reader\":{},\"exchanges\":[{}]}}\n", string(reader), items.join(","))
}

/// A file's bytes: a hex dump for people (offset, 16 bytes, ASCII), or JSON.
pub fn file(reader: &str, content: &[u8], json: bool) -> String {
    if json {
        return format!(
            "{{\"reader\":{},\"size\":{},\"data\":\"{}\"}}\n",
            string(reader),
            content.len(),
            hex(content, "")
        );
    }
    let mut out = String::new();
    for (line, bytes) in content.chunks(16).enumerate() {
        let ascii: String = bytes
            .iter()
            .map(|&b| if b.is_ascii_graphic() || b == b' ' { char::from(b) } else { '.' })
            .collect();
        let _ = writeln!(out, "{:04X}  {:<47}  {ascii}", line * 16, hex(bytes, " "));
    }
    let _ = writeln!(out, "{}", size(content.len()));
    out
}

/// What `scm read --out` wrote.
pub fn file_written(reader: &str, len: usize, path: &str, json: bool) -> String {
    if json {
        return format!("{{\"reader\":{},\"size\":{len},\"out\":{}}}\n", string(reader), string(path));
    }
    format!("{} written to {path}\n", size(len))
}

fn size(len: usize) -> String {
    match len {
        1 => "1 byte".into(),
        n => format!("{n} bytes"),
    }
}

/// One monitor event as one line.
pub fn event(event: u32, reader: &str, json: bool) -> String {
    let (text, name) = match event {
        SCM_EVENT_READER_ADDED => ("reader added", "reader_added"),
        SCM_EVENT_READER_REMOVED => ("reader removed", "reader_removed"),
        SCM_EVENT_CARD_INSERTED => ("card inserted", "card_inserted"),
        SCM_EVENT_CARD_REMOVED => ("card removed", "card_removed"),
        // The library documents these four; anything else would be a new kind, shown as such.
        _ => ("event", "unknown"),
    };
    if json {
        format!("{{\"event\":\"{name}\",\"reader\":{}}}\n", string(reader))
    } else {
        format!("{text}: {reader}\n")
    }
}

pub fn verification(verification: &Verification, json: bool) -> String {
    let (result, tries) = match verification.verdict {
        Verdict::Verified => ("ok", None),
        Verdict::Wrong(tries) => ("wrong", tries),
        Verdict::Blocked => ("blocked", Some(0)),
    };
    if json {
        let tries = tries.map_or("null".to_string(), |tries| tries.to_string());
        return format!(
            "{{\"reader\":{},\"reference\":\"{:02X}\",\"result\":\"{result}\",\"tries_left\":{tries}}}\n",
            string(verification.reader),
            verification.reference
        );
    }
    match verification.verdict {
        Verdict::Verified => "ok\n".into(),
        Verdict::Wrong(None) => "wrong PIN: the card does not say how many tries are left\n".into(),
        Verdict::Wrong(Some(1)) => "wrong PIN: 1 try left\n".into(),
        Verdict::Wrong(Some(tries)) => format!("wrong PIN: {tries} tries left\n"),
        Verdict::Blocked => "PIN blocked\n".into(),
    }
}

fn state_name(state: u32) -> &'static str {
    match state {
        SCM_STATE_UNKNOWN => "unknown",
        SCM_STATE_ABSENT => "absent",
        SCM_STATE_PRESENT => "present",
        SCM_STATE_SWALLOWED => "swallowed",
        SCM_STATE_POWERED => "powered",
        SCM_STATE_NEGOTIABLE => "negotiable",
        SCM_STATE_SPECIFIC => "specific",
        // The library maps every PC/SC state onto the seven above.
        _ => "unknown",
    }
}

fn protocol_name(protocol: u32) -> &'static str {
    match protocol {
        SCM_PROTOCOL_T0 => "T=0",
        SCM_PROTOCOL_T1 => "T=1",
        SCM_PROTOCOL_RAW => "raw",
        SCM_PROTOCOL_UNDEFINED => "undefined",
        _ => "undefined",
    }
}

pub fn hex(bytes: &[u8], separator: &str) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(separator)
}

/// A JSON string: quotes, backslashes and control characters escaped, the rest as UTF-8.
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_what_json_requires() {
        assert_eq!(string("a\"b\\c\nd\u{1}é"), r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn a_dump_has_offsets_hex_and_ascii() {
        let content: Vec<u8> = (0x1E..0x31).collect();
        assert_eq!(
            file("R", &content, false),
            "0000  1E 1F 20 21 22 23 24 25 26 27 28 29 2A 2B 2C 2D  .. !\"#$%&'()*+,-\n\
             0010  2E 2F 30                                         ./0\n\
             19 bytes\n"
        );
        assert_eq!(file("R", &[], false), "0 bytes\n");
        assert_eq!(file("R", &[0x7F], true), "{\"reader\":\"R\",\"size\":1,\"data\":\"7F\"}\n");
    }

    #[test]
    fn an_answer_too_short_for_a_status_word_has_none() {
        let short = [Exchange { command: vec![0], response: vec![0x90] }];
        assert_eq!(
            exchanges_json("R", &short),
            "{\"reader\":\"R\",\"exchanges\":[{\"command\":\"00\",\"response\":\"90\",\"sw\":null}]}\n"
        );
    }
}

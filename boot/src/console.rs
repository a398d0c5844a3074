//! Reading the guest's serial console back: what the command wrote, and
//! how it ended (the markers of [`crate::init`]).

use std::io::{BufRead, Write};

use crate::init::{error_marker, start_marker, status_marker};

/// How a guest's run ended, as its console told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The command ran and exited with this status.
    Exited(i32),
    /// Init failed before running the command.
    InitFailed(String),
    /// The console closed without either (the VM died or never booted).
    NoStatus,
}

/// Follows a console: lines before the start marker (boot messages) go to
/// `boot_log` only, the command's output goes to `output` as it arrives
/// (carriage returns the serial line adds removed), until the status marker.
pub struct ConsoleReader {
    start: String,
    status: String,
    error: String,
}

impl ConsoleReader {
    pub fn new(nonce: &str) -> ConsoleReader {
        ConsoleReader {
            start: start_marker(nonce),
            status: status_marker(nonce),
            error: error_marker(nonce),
        }
    }

    /// Reads `console` to its end or to the status marker.
    pub fn follow(
        &self,
        console: impl BufRead,
        output: &mut dyn Write,
        boot_log: &mut Vec<u8>,
    ) -> std::io::Result<Outcome> {
        let mut started = false;
        let mut console = console;
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            if console.read_until(b'\n', &mut line)? == 0 {
                return Ok(Outcome::NoStatus);
            }
            let mut text: &[u8] = &line;
            if text.ends_with(b"\r\n") {
                text = &text[..text.len() - 2];
            } else if text.ends_with(b"\n") {
                text = &text[..text.len() - 1];
            }
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if !started {
                boot_log.extend_from_slice(text);
                boot_log.push(b'\n');
                if let Some(at) = find(text, self.error.as_bytes()) {
                    let what = &text[at + self.error.len()..];
                    return Ok(Outcome::InitFailed(
                        String::from_utf8_lossy(what).into_owned(),
                    ));
                }
                if text == self.start.as_bytes() {
                    started = true;
                }
                continue;
            }
            if let Some(at) = find(text, self.status.as_bytes()) {
                output.write_all(&text[..at])?;
                output.flush()?;
                let code = std::str::from_utf8(&text[at + self.status.len()..])
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok());
                return Ok(match code {
                    Some(code) => Outcome::Exited(code),
                    None => Outcome::NoStatus,
                });
            }
            output.write_all(text)?;
            output.write_all(b"\n")?;
            output.flush()?;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(console: &str) -> (Outcome, String, String) {
        let mut out = Vec::new();
        let mut log = Vec::new();
        let outcome = ConsoleReader::new("n0")
            .follow(console.as_bytes(), &mut out, &mut log)
            .unwrap();
        (
            outcome,
            String::from_utf8(out).unwrap(),
            String::from_utf8(log).unwrap(),
        )
    }

    #[test]
    fn output_between_the_markers_and_the_status() {
        let (outcome, out, log) = run(
            "[ 0.1] booting\r\ncairn-start-n0\r\nhello\r\nno newline cairn-status-n0 3\r\nreboot: Power down\r\n",
        );
        assert_eq!(outcome, Outcome::Exited(3));
        assert_eq!(out, "hello\nno newline ");
        assert!(log.contains("booting"));
    }

    #[test]
    fn markers_with_another_nonce_are_output() {
        let (outcome, out, _) = run("cairn-start-n0\ncairn-status-xx 0\n");
        assert_eq!(outcome, Outcome::NoStatus);
        assert_eq!(out, "cairn-status-xx 0\n");
    }

    #[test]
    fn init_failures_and_silent_deaths() {
        let (outcome, _, _) = run("cairn-init-error-n0: mounting virtio-fs tag x at /nix/store\n");
        assert_eq!(
            outcome,
            Outcome::InitFailed("mounting virtio-fs tag x at /nix/store".into())
        );
        assert_eq!(run("Kernel panic\n").0, Outcome::NoStatus);
    }
}

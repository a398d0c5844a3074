//! Fuzzes reading a guest's serial console (written by the guest, so
//! untrusted): no input may panic, and the command's output never holds
//! the status marker it was ended by.
#![no_main]

use cairn_boot::console::{ConsoleReader, Outcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut output = Vec::new();
    let mut boot_log = Vec::new();
    let outcome = ConsoleReader::new("n0")
        .follow(data, &mut output, &mut boot_log)
        .expect("reading from memory cannot fail");
    if let Outcome::Exited(_) = outcome {
        assert!(data.windows(15).any(|w| w == b"cairn-status-n0"));
    }
    assert!(output.len() <= data.len() + data.iter().filter(|b| **b == b'\n').count() + 1);
});

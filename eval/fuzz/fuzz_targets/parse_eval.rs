//! Fuzzes parsing and evaluation of arbitrary bytes: any input must end in
//! a value or an error, never a panic, within the step and depth limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cairn_eval::fuzz_eval(data);
});

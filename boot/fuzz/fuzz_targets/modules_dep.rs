//! Fuzzes the modules.dep parser and the load order: no input may panic;
//! every module comes after the modules it depends on.
#![no_main]

use cairn_boot::modules::{ModulesDep, module_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(dep) = ModulesDep::parse(text) else { return };
    let roots: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split(':').next())
        .take(4)
        .collect();
    if let Ok(order) = dep.load_order(&roots) {
        let names: Vec<String> = order.iter().map(|p| module_name(p)).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a module is loaded twice");
    }
});

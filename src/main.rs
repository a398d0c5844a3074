//! The `cairn` command: CLI, configuration and wiring of the services.
fn main() {}

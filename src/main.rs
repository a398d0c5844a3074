//! The `cairn` command: CLI, configuration and wiring of the services.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "cairn", about = "A Nix store that is mounted, not copied")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Evaluate a Nix expression (like `nix-instantiate --eval`).
    Eval(cairn_eval::cli::EvalArgs),
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Eval(args) => cairn_eval::cli::run(args),
    }
}

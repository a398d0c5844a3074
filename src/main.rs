//! The `cairn` command: CLI, configuration and wiring of the services.

mod commands;
mod fuse_helper;
mod store_location;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A Nix store that is mounted, not copied.
#[derive(Parser)]
#[command(name = "cairn", version, about)]
struct Cli {
    /// Directory of the embedded local store [default: $XDG_DATA_HOME/cairn]
    #[arg(long, global = true, env = "CAIRN_STORE_DIR")]
    store_dir: Option<std::path::PathBuf>,

    /// The store to use: a URL (`local:///DIR`, `memory://`,
    /// `objectstore+s3://bucket/prefix?region=...&cache=local:///DIR`, ...)
    /// or a TOML file of named stores [default: the local store in --store-dir]
    #[arg(
        long,
        global = true,
        env = "CAIRN_STORE",
        value_name = "CONFIG_FILE_OR_URL"
    )]
    store: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import files or directory trees into the store; prints each root's digest.
    Import(commands::import::ImportArgs),
    /// Write a stored directory or blob out as a filesystem tree.
    Export(commands::export::ExportArgs),
    /// Print a stored blob to stdout.
    Cat(commands::cat::CatArgs),
    /// List a stored directory.
    Ls(commands::ls::LsArgs),
    /// Add files or trees as store paths (as `nix-store --add`); prints the store paths.
    Add(commands::add::AddArgs),
    /// NAR export and import.
    #[command(subcommand)]
    Nar(commands::nar::NarCommand),
    /// Show what the store knows about store paths (as `nix path-info`).
    PathInfo(commands::path_info::PathInfoArgs),
    /// Mount the store as a read-only filesystem (foreground).
    Mount(commands::mount::MountArgs),
    /// Serve the store as a Nix binary cache over HTTP (accepts `nix copy --to`).
    Serve(commands::serve::ServeArgs),
    /// Serve the store to a microVM over vhost-user-fs (virtio-fs), read-only.
    Virtiofs(commands::virtiofs::VirtiofsArgs),
    /// Boot a microVM whose /nix/store is a closure served over virtio-fs, run a command in it.
    Boot(Box<commands::boot::BootArgs>),
    /// Evaluate a Nix expression (as `nix-instantiate --eval`).
    Eval(Box<cairn_eval::cli::EvalArgs>),
    /// Operations on the store as a whole.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Re-check every chunk, chunk map and directory, and every store path's NAR hash.
    Verify,
    /// Print the store configuration `--store` resolves to (as TOML).
    ShowConfig,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // A closed stderr must not turn into a panic on some thread.
        .log_internal_errors(false)
        // CAIRN_LOG_SPANS=1: one line per finished span, with its busy and idle time.
        .with_span_events(if std::env::var_os("CAIRN_LOG_SPANS").is_some() {
            tracing_subscriber::fmt::format::FmtSpan::CLOSE
        } else {
            tracing_subscriber::fmt::format::FmtSpan::NONE
        })
        .init();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(call) = fuse_helper::detect(&args) {
        return fuse_helper::run(call);
    }
    let cli = Cli::parse();
    let command = match cli.command {
        // The evaluator runs on its own thread with its own stack.
        Command::Eval(args) => return cairn_eval::cli::run(*args),
        command => command,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let location = store_location::StoreLocation::new(cli.store_dir, cli.store)?;
        match command {
            Command::Import(args) => commands::import::run(&location, args).await,
            Command::Export(args) => commands::export::run(&location, args).await,
            Command::Cat(args) => commands::cat::run(&location, args).await,
            Command::Ls(args) => commands::ls::run(&location, args).await,
            Command::Add(args) => commands::add::run(&location, args).await,
            Command::Nar(command) => commands::nar::run(&location, command).await,
            Command::PathInfo(args) => commands::path_info::run(&location, args).await,
            Command::Mount(args) => commands::mount::run(&location, args).await,
            Command::Serve(args) => commands::serve::run(&location, args).await,
            Command::Virtiofs(args) => commands::virtiofs::run(&location, args).await,
            Command::Boot(args) => commands::boot::run(&location, *args).await,
            Command::Store(StoreCommand::Verify) => commands::verify::run(&location).await,
            Command::Store(StoreCommand::ShowConfig) => commands::show_config::run(&location),
            Command::Eval(_) => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause once: errors that already print
/// their source are not followed by it again.
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

//! `cairn serve`: the store as a Nix binary cache over HTTP, in the
//! foreground until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cairn_pathinfo::SecretKey;
use cairn_pathinfo::binary_cache::server::{CacheServer, ServedCompression, ServerOptions};
use cairn_pathinfo::render::RenderOptions;
use tokio::io::AsyncWriteExt;

use crate::store_location::StoreLocation;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Compression {
    None,
    Zstd,
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// Sign narinfo files with this secret key (Nix's `name:base64` format,
    /// as written by `nix-store --generate-binary-cache-key`).
    #[arg(long, env = "CAIRN_SECRET_KEY_FILE", value_name = "FILE")]
    secret_key_file: Option<PathBuf>,
    /// Compression of the NARs the narinfo files point to (`none` allows
    /// Range requests).
    #[arg(long, value_enum, default_value = "none")]
    compression: Compression,
    /// zstd level for `--compression zstd`.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    zstd_level: i32,
    /// `Priority` announced in nix-cache-info (Nix prefers lower).
    #[arg(long, default_value_t = 40)]
    priority: u32,
    /// Announce `WantMassQuery: 0`.
    #[arg(long)]
    no_mass_query: bool,
    /// Refuse uploads (PUT of NARs and narinfo files).
    #[arg(long)]
    read_only: bool,
    /// Connections served at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_connections: u32,
    /// Largest NAR upload in MiB (compressed and uncompressed).
    #[arg(long, default_value_t = 16384)]
    max_upload_mib: u64,
    /// Chunk fetches in flight ahead of each NAR being sent.
    #[arg(long, default_value_t = RenderOptions::default().window)]
    window: usize,
}

fn read_secret_key(file: &PathBuf) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the secret key {}", file.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("the secret key in {}", file.display()))
}

pub async fn run(location: &StoreLocation, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = location.open_store()?;
    let secret_key = args
        .secret_key_file
        .as_ref()
        .map(read_secret_key)
        .transpose()?;
    if secret_key.is_none() {
        tracing::warn!("no --secret-key-file: narinfo files carry only their stored signatures");
    }
    let options = ServerOptions {
        store_dir: store.store_dir.clone(),
        secret_key,
        compression: match args.compression {
            Compression::None => ServedCompression::None,
            Compression::Zstd => ServedCompression::Zstd {
                level: args.zstd_level,
            },
        },
        priority: args.priority,
        want_mass_query: !args.no_mass_query,
        allow_uploads: !args.read_only,
        max_connections: args.max_connections as usize,
        max_upload_bytes: args.max_upload_mib.saturating_mul(1 << 20),
        render: RenderOptions {
            window: args.window.max(1),
            ..RenderOptions::default()
        },
        ..ServerOptions::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let bound = listener.local_addr()?;
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("listening on http://{bound}\n").as_bytes())
        .await?;
    stdout.flush().await?;
    let server = CacheServer::new(store.castore, store.paths, options);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    server.serve(listener, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

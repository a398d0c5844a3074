//! `cairn nar dump STORE_PATH` and `cairn nar import --name NAME < NAR`.

use std::process::ExitCode;

use anyhow::Context;
use cairn_pathinfo::hash::NixHash;
use cairn_pathinfo::ingest::ingest_nar;
use cairn_pathinfo::render::{RenderOptions, render_nar};
use cairn_pathinfo::{ContentAddress, FileIngestionMethod, PathInfo};
use tokio::io::AsyncWriteExt;

use crate::store_location::{Store, StoreLocation};

#[derive(clap::Subcommand)]
pub enum NarCommand {
    /// Write the NAR of a store path to stdout.
    Dump {
        /// A store path (/nix/store/HASH-NAME, or HASH-NAME).
        store_path: String,
    },
    /// Read a NAR from stdin and add it as a store path named NAME.
    Import {
        #[arg(long)]
        name: String,
    },
}

/// Resolves a store path given in full or as its base name.
pub async fn lookup(store: &Store, text: &str) -> anyhow::Result<PathInfo> {
    let path = if text.starts_with('/') {
        store.store_dir.parse_path(text)
    } else {
        cairn_pathinfo::StorePath::from_base_name(text)
    }
    .with_context(|| format!("{text:?} is not a store path"))?;
    store.paths.get_path(&path).await?.with_context(|| {
        format!(
            "{} is not in the store",
            store.store_dir.display_path(&path)
        )
    })
}

pub async fn run(location: &StoreLocation, command: NarCommand) -> anyhow::Result<ExitCode> {
    let store = location.open_store()?;
    match command {
        NarCommand::Dump { store_path } => {
            let info = lookup(&store, &store_path).await?;
            let stdout = tokio::io::BufWriter::with_capacity(1 << 20, tokio::io::stdout());
            let (mut stdout, rendered) =
                render_nar(&store.castore, &info.node, stdout, RenderOptions::default()).await?;
            stdout.flush().await?;
            if rendered.nar_sha256 != info.nar_sha256 || rendered.nar_size != info.nar_size {
                anyhow::bail!(
                    "{}: the NAR written does not match the registered NAR hash",
                    store_path
                );
            }
        }
        NarCommand::Import { name } => {
            let ingested = ingest_nar(&store.castore, tokio::io::stdin()).await?;
            let store_path =
                store
                    .store_dir
                    .make_source_path(&name, &ingested.nar_sha256, &[], false)?;
            let ca = ContentAddress::Fixed(
                FileIngestionMethod::Recursive,
                NixHash::Sha256(ingested.nar_sha256),
            );
            let info = super::add::register(&store, store_path, ingested, ca).await?;
            println!("{}", store.store_dir.display_path(&info.store_path));
        }
    }
    Ok(ExitCode::SUCCESS)
}

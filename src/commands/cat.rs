//! `cairn cat DIGEST`

use std::process::ExitCode;

use anyhow::Context;
use cairn_castore::{BlobReader, Digest};
use tokio::io::AsyncWriteExt;

use crate::store_location::StoreLocation;

#[derive(clap::Args)]
pub struct CatArgs {
    /// Digest of a blob.
    digest: String,
}

pub async fn run(location: &StoreLocation, args: CatArgs) -> anyhow::Result<ExitCode> {
    let store = location.open()?;
    let digest: Digest = args.digest.parse().context("parsing the digest")?;
    let mut reader = BlobReader::open(store.blobs.clone(), digest).await?;
    let mut stdout = tokio::io::stdout();
    tokio::io::copy(&mut reader, &mut stdout).await?;
    stdout.flush().await?;
    Ok(ExitCode::SUCCESS)
}

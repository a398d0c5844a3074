//! `cairn export DIGEST DEST`

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_castore::export::export_node;

use crate::store_location::StoreLocation;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Digest of a directory or blob.
    digest: String,
    /// Where to write it (must not exist).
    dest: PathBuf,
}

pub async fn run(location: &StoreLocation, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = location.open()?;
    let node = super::resolve_node(&store, &args.digest).await?;
    export_node(&store, &node, &args.dest).await?;
    Ok(ExitCode::SUCCESS)
}

//! `cairn ls DIGEST`: one line per entry, `ls -l` style.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use cairn_castore::{Digest, DirectoryServiceError, Node};

use crate::store_location::StoreLocation;

#[derive(clap::Args)]
pub struct LsArgs {
    /// Digest of a directory.
    digest: String,
}

pub async fn run(location: &StoreLocation, args: LsArgs) -> anyhow::Result<ExitCode> {
    let store = location.open()?;
    let digest: Digest = args.digest.parse().context("parsing the digest")?;
    let dir = store
        .directories
        .get(&digest)
        .await?
        .ok_or(DirectoryServiceError::NotFound(digest))?;
    let mut out = std::io::stdout().lock();
    for (name, node) in dir.entries() {
        let name = String::from_utf8_lossy(name.as_bytes());
        match node {
            Node::Directory { digest, size } => {
                writeln!(out, "dr-xr-xr-x {size:>12} {digest} {name}")?
            }
            Node::File {
                digest,
                size,
                executable,
            } => {
                let mode = if *executable {
                    "-r-xr-xr-x"
                } else {
                    "-r--r--r--"
                };
                writeln!(out, "{mode} {size:>12} {digest} {name}")?
            }
            Node::Symlink { target } => writeln!(
                out,
                "lrwxrwxrwx {:>12} {:64} {name} -> {}",
                target.as_bytes().len(),
                "",
                String::from_utf8_lossy(target.as_bytes())
            )?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

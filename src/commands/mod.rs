//! One module per subcommand.

pub mod add;
pub mod boot;
pub mod cat;
pub mod export;
pub mod import;
pub mod ls;
pub mod mount;
pub mod nar;
pub mod path_info;
pub mod serve;
pub mod show_config;
pub mod verify;
pub mod virtiofs;
pub mod whole_files;

use anyhow::Context;
use cairn_castore::{CaStore, Digest, Node};

/// Resolves a digest to a node: a directory if the store has one by that
/// digest, else a blob.
pub async fn resolve_node(store: &CaStore, digest: &str) -> anyhow::Result<Node> {
    let digest: Digest = digest.parse().context("parsing the digest")?;
    if let Some(size) = store.directories.size_of(&digest).await? {
        return Ok(Node::Directory { digest, size });
    }
    if let Some(map) = store.blobs.chunk_map(&digest).await? {
        return Ok(Node::File {
            digest,
            size: map.blob_size(),
            executable: false,
        });
    }
    anyhow::bail!("the store has no directory or blob {digest}")
}

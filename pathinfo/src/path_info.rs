//! PathInfo: what the store knows about one store path.

use bytes::Bytes;
use cairn_castore::{Directory, Name, Node};

use crate::signing::Signature;
use crate::store_path::{ContentAddress, StorePath};

/// A store path and its contents (a castore root node), references, NAR
/// size and hash, signatures, deriver and content address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    pub store_path: StorePath,
    pub node: Node,
    pub references: Vec<StorePath>,
    pub nar_size: u64,
    pub nar_sha256: [u8; 32],
    pub signatures: Vec<Signature>,
    pub deriver: Option<StorePath>,
    pub ca: Option<ContentAddress>,
    /// Seconds since the epoch when the path was registered here.
    pub registration_time: i64,
}

/// Why a stored root node could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("stored root node is invalid: {0}")]
pub struct NodeEncodingError(String);

/// Encodes a root node as the canonical encoding of a one-entry directory
/// named `name` (castore.proto has no standalone node message).
pub fn encode_root_node(name: &str, node: &Node) -> Result<Vec<u8>, NodeEncodingError> {
    let name = Name::try_from(name).map_err(|e| NodeEncodingError(e.to_string()))?;
    let dir = Directory::from_entries(vec![(name, node.clone())])
        .map_err(|e| NodeEncodingError(e.to_string()))?;
    Ok(dir.encode())
}

/// Decodes what [`encode_root_node`] wrote.
pub fn decode_root_node(bytes: &[u8]) -> Result<Node, NodeEncodingError> {
    let dir = Directory::decode(bytes).map_err(|e| NodeEncodingError(e.to_string()))?;
    match dir.entries() {
        [(_, node)] => Ok(node.clone()),
        _ => Err(NodeEncodingError(format!(
            "expected one entry, found {}",
            dir.len()
        ))),
    }
}

impl PathInfo {
    /// `Bytes` of the encoded root node.
    pub fn encoded_node(&self) -> Result<Bytes, NodeEncodingError> {
        encode_root_node(&self.store_path.to_base_name(), &self.node).map(Bytes::from)
    }
}

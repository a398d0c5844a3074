//! cairn-pathinfo: the Nix layer — store paths, nixbase32, hashes, NAR,
//! narinfo and signatures, PathInfo and its services.
//!
//! The format modules here ([`nixbase32`], [`hash`], [`store_path`],
//! [`nar`], [`narinfo`], [`signing`]) are independent of the content-addressed
//! store: they parse, validate and produce Nix's formats byte for byte.

pub mod hash;
pub mod nixbase32;
pub mod store_path;

pub use hash::{HashAlgo, HashError, NixHash};
pub use store_path::{ContentAddress, FileIngestionMethod, StoreDir, StorePath, StorePathError};

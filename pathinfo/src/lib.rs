//! cairn-pathinfo: the Nix layer — store paths, nixbase32, hashes, NAR,
//! narinfo and signatures, PathInfo and its services.
//!
//! The format modules here ([`nixbase32`], [`hash`], [`store_path`],
//! [`nar`], [`narinfo`], [`signing`]) are independent of the content-addressed
//! store: they parse, validate and produce Nix's formats byte for byte.

pub mod hash;
pub mod nar;
pub mod narinfo;
pub mod nixbase32;
pub mod signing;
pub mod store_path;

pub use hash::{HashAlgo, HashError, NixHash};
pub use narinfo::{NarInfo, NarInfoError};
pub use signing::{PublicKey, SecretKey, Signature, SigningError};
pub use store_path::{ContentAddress, FileIngestionMethod, StoreDir, StorePath, StorePathError};

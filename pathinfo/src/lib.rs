//! cairn-pathinfo: the Nix layer — store paths, nixbase32, hashes, NAR,
//! narinfo and signatures, PathInfo and its services.
//!
//! The format modules here are independent of the content-addressed store:
//! they parse, validate and produce Nix's formats byte for byte, and stream
//! where data can be large.
//!
//! - [`nixbase32`]: Nix's base-32 encoding.
//! - [`hash`]: [`NixHash`] (md5, sha1, sha256, sha512) in base16,
//!   nixbase32, base64, `algo:digest` and SRI forms; incremental
//!   [`hash::Hasher`].
//! - [`store_path`]: [`StorePath`] parsing and validation, [`StoreDir`]
//!   (default `/nix/store`) with the computation of source, text and
//!   fixed-output store paths, and [`ContentAddress`].
//! - [`nar`]: streaming NAR reader ([`nar::NarReader`], [`nar::read_nar`]
//!   with a [`nar::NarVisitor`]), writer ([`nar::NarWriter`]), NAR hashing
//!   wrappers and [`nar::dump_path`] for local trees.
//! - [`narinfo`]: [`NarInfo`] parsing, serialisation, fingerprints, signing
//!   and verification.
//! - [`signing`]: Ed25519 keys and signatures in Nix's textual formats.
//!
//! On top of castore:
//! - [`path_info`]: [`PathInfo`], a store path's root node, references,
//!   NAR hash and size, signatures, deriver and content address;
//! - [`service`]: [`PathInfoService`] with memory, sqlite and object store
//!   backends, and the castore combinators over PathInfo services;
//! - [`path_info_text`]: the text form of a PathInfo in object stores;
//! - [`binary_cache`]: a read-only PathInfoService over a Nix binary
//!   cache, substituting paths into castore when they are looked up;
//! - [`composition`]: a whole store (content and paths) from one
//!   composition config or URL;
//! - [`ingest`]: NAR -> castore, streaming, NAR hash computed on the way;
//! - [`render`]: castore -> NAR with a sliding window of chunk fetches.

pub mod binary_cache;
pub mod composition;
pub mod hash;
pub mod ingest;
pub mod nar;
pub mod narinfo;
pub mod nixbase32;
pub mod path_info;
pub mod path_info_text;
pub mod render;
pub mod service;
pub mod signing;
pub mod store_path;

pub use hash::{HashAlgo, HashError, NixHash};
pub use narinfo::{NarInfo, NarInfoError};
pub use path_info::PathInfo;
pub use service::{PathInfoError, PathInfoService};
pub use signing::{PublicKey, SecretKey, Signature, SigningError};
pub use store_path::{ContentAddress, FileIngestionMethod, StoreDir, StorePath, StorePathError};

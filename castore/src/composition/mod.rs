//! Composition: stores assembled from one configuration.
//!
//! A [`Composition`] is a set of named stores (aliases) that refer to each
//! other, and the alias of the root store commands use. It is read from TOML
//! ([`Composition::from_toml`]) or converted from URL shorthand
//! ([`Composition::from_url`]); both give the same structure, checked by
//! [`Composition::validate`] (unknown aliases, cycles, empty lists) and
//! printed by [`Composition::to_toml`].
//!
//! ```toml
//! root = "main"
//!
//! [chunking]            # optional: how new blobs are cut into chunks
//! min_size = 16384
//! avg_size = 65536
//! max_size = 262144
//!
//! [stores.main]
//! kind = "cache"
//! near = "disk"
//! far = "s3"
//!
//! [stores.disk]
//! kind = "local"
//! path = "/var/cache/cairn"
//!
//! [stores.s3]
//! kind = "objectstore"
//! url = "s3://bucket/prefix"
//! options = { region = "eu-west-1" }
//! ```
//!
//! [`build()`] instantiates the castore services of a composition, each store
//! once, in dependency order; cairn-pathinfo builds the PathInfo services
//! over the same graph. A new kind of store is one [`StoreKind`] variant, its
//! references in [`StoreKind::references`], its URL form in [`url`] and one
//! arm in each builder that can serve it.

pub mod build;
pub mod config;
pub mod url;

pub use build::{BuildContext, BuiltStore, BuiltStores, build};
pub use config::{Composition, CompositionError, Compression, StoreKind};

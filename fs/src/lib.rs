//! cairn-fs: the read-only filesystem core that presents the store as
//! `/nix/store`, and its FUSE transport.

//! cairn-pathinfo: the Nix layer — store paths, nixbase32, hashes, NAR,
//! narinfo and signatures, PathInfo and its services.

//! The files of a served binary cache, from request paths.
//!
//! - `/nix-cache-info`
//! - `/<hash part>.narinfo`
//! - `/nar/<hash part>-<nixbase32 NAR sha256>.nar[.zst]`: NARs this server
//!   renders (the store path's hash part finds the path, the NAR hash pins
//!   the contents the URL was published for);
//! - `/nar/<anything>.nar[.xz|.zst|.bz2|.br|.gz]`: where Nix uploads NARs
//!   (`nar/<file hash>.nar.xz` and the like).

use crate::nixbase32;

/// How a NAR file is compressed, from its name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NarCompression {
    None,
    Xz,
    Zstd,
    Bzip2,
    Brotli,
    Gzip,
}

impl NarCompression {
    /// The narinfo `Compression` value.
    pub fn narinfo_name(self) -> &'static str {
        match self {
            NarCompression::None => "none",
            NarCompression::Xz => "xz",
            NarCompression::Zstd => "zstd",
            NarCompression::Bzip2 => "bzip2",
            NarCompression::Brotli => "br",
            NarCompression::Gzip => "gzip",
        }
    }

    /// The file name extension after `.nar`.
    pub fn extension(self) -> &'static str {
        match self {
            NarCompression::None => "",
            NarCompression::Xz => ".xz",
            NarCompression::Zstd => ".zst",
            NarCompression::Bzip2 => ".bz2",
            NarCompression::Brotli => ".br",
            NarCompression::Gzip => ".gz",
        }
    }

    fn from_file_name(name: &str) -> Option<(&str, NarCompression)> {
        const ALL: [NarCompression; 6] = [
            NarCompression::Xz,
            NarCompression::Zstd,
            NarCompression::Bzip2,
            NarCompression::Brotli,
            NarCompression::Gzip,
            NarCompression::None,
        ];
        ALL.into_iter().find_map(|c| {
            name.strip_suffix(c.extension())
                .and_then(|stem| stem.strip_suffix(".nar"))
                .filter(|stem| !stem.is_empty())
                .map(|stem| (stem, c))
        })
    }
}

/// A NAR this server renders: `nar/<hash part>-<NAR sha256>.nar[.zst]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderedNarName {
    pub path_digest: [u8; 20],
    pub nar_sha256: [u8; 32],
    pub compression: NarCompression,
}

impl RenderedNarName {
    /// The URL (relative to the cache) published in narinfo files.
    pub fn url(&self) -> String {
        format!(
            "nar/{}-{}.nar{}",
            nixbase32::encode(&self.path_digest),
            nixbase32::encode(&self.nar_sha256),
            self.compression.extension()
        )
    }
}

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    CacheInfo,
    NarInfo([u8; 20]),
    /// A NAR file: its cache-relative URL (`nar/…`), its compression, and
    /// what it is when it is one this server renders.
    Nar {
        url: String,
        compression: NarCompression,
        rendered: Option<RenderedNarName>,
    },
    /// Anything else (answered 404).
    Unknown,
}

/// Parses the path of a request URI (without the query).
pub fn parse_route(path: &str) -> Route {
    let Some(path) = path.strip_prefix('/') else {
        return Route::Unknown;
    };
    if path == "nix-cache-info" {
        return Route::CacheInfo;
    }
    if let Some(hash) = path.strip_suffix(".narinfo") {
        return match nixbase32::decode_fixed::<20>(hash) {
            Ok(digest) if hash.len() == 32 => Route::NarInfo(digest),
            _ => Route::Unknown,
        };
    }
    let Some(file) = path.strip_prefix("nar/") else {
        return Route::Unknown;
    };
    let valid_name = !file.is_empty()
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    if !valid_name || file.starts_with('.') {
        return Route::Unknown;
    }
    let Some((stem, compression)) = NarCompression::from_file_name(file) else {
        return Route::Unknown;
    };
    let rendered = stem.split_once('-').and_then(|(path_hash, nar_hash)| {
        let path_digest = nixbase32::decode_fixed::<20>(path_hash).ok()?;
        let nar_sha256 = nixbase32::decode_fixed::<32>(nar_hash).ok()?;
        let ok = path_hash.len() == 32
            && nar_hash.len() == 52
            && matches!(compression, NarCompression::None | NarCompression::Zstd);
        ok.then_some(RenderedNarName {
            path_digest,
            nar_sha256,
            compression,
        })
    });
    Route::Nar {
        url: path.to_string(),
        compression,
        rendered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(parse_route("/nix-cache-info"), Route::CacheInfo);
        let hash = "0123456789abcdfghijklmnpqrsvwxyz";
        assert!(matches!(
            parse_route(&format!("/{hash}.narinfo")),
            Route::NarInfo(_)
        ));
        assert_eq!(parse_route("/short.narinfo"), Route::Unknown);
        assert_eq!(parse_route("/nar/"), Route::Unknown);
        assert_eq!(parse_route("/nar/../x.nar"), Route::Unknown);
        assert_eq!(parse_route("/nar/a/b.nar"), Route::Unknown);
        assert_eq!(parse_route("/nar/x.tar"), Route::Unknown);
        assert_eq!(parse_route("nix-cache-info"), Route::Unknown);
        let uploaded = parse_route("/nar/1abc.nar.xz");
        assert_eq!(
            uploaded,
            Route::Nar {
                url: "nar/1abc.nar.xz".into(),
                compression: NarCompression::Xz,
                rendered: None,
            }
        );
        let name = RenderedNarName {
            path_digest: [3; 20],
            nar_sha256: [9; 32],
            compression: NarCompression::Zstd,
        };
        let url = name.url();
        assert_eq!(
            parse_route(&format!("/{url}")),
            Route::Nar {
                url,
                compression: NarCompression::Zstd,
                rendered: Some(name),
            }
        );
    }
}

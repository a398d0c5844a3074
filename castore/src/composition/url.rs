//! URL shorthand for a composition.
//!
//! | URL | store |
//! |-----|-------|
//! | `local://` | the embedded local store in the default directory |
//! | `local:///DIR` | the embedded local store in DIR |
//! | `memory://` | an in-memory store |
//! | `objectstore+SCHEME://...` | an object store at `SCHEME://...` (s3, gs, az, http, https, file, memory) |
//! | `file:///DIR`, `http(s)://HOST/...` | a Nix binary cache, read only (`trusted-public-keys=`, `require-sigs=false`, `negative-ttl-ms=`) |
//!
//! Query parameters: `cache=OTHER_URL` puts the store OTHER_URL names in
//! front of this one (a `cache` store; percent-encode OTHER_URL's own `?`
//! and `&`); on object stores, `retries`, `backoff_ms`, `retry_timeout_ms`,
//! `request_timeout_ms` and `connect_timeout_ms` set retries and timeouts,
//! and every other parameter is an `object_store` option (`region`,
//! `endpoint`, `allow_http`, ...).
//!
//! The result is an ordinary [`Composition`] whose root is `main`; a cached
//! store `main` has its parts in `main-near` and `main-far`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::config::{Composition, CompositionError, Compression, Remote, StoreKind};

/// The root alias of a composition made from a URL.
pub const URL_ROOT: &str = "main";

impl Composition {
    /// Converts URL shorthand to a composition (see the module docs).
    pub fn from_url(url: &str) -> Result<Composition, CompositionError> {
        let mut stores = BTreeMap::new();
        add_url(url, URL_ROOT, &mut stores)?;
        let composition = Composition {
            root: URL_ROOT.to_string(),
            chunking: None,
            stores,
        };
        composition.validate()?;
        Ok(composition)
    }
}

fn add_url(
    text: &str,
    alias: &str,
    stores: &mut BTreeMap<String, StoreKind>,
) -> Result<(), CompositionError> {
    let err = |reason: String| CompositionError::Url {
        url: text.to_string(),
        reason,
    };
    let parsed = url::Url::parse(text).map_err(|e| err(e.to_string()))?;
    let mut query: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some(at) = query.iter().position(|(k, _)| k == "cache") {
        let (_, near_url) = query.remove(at);
        let mut far = parsed.clone();
        set_query(&mut far, &query);
        let near = format!("{alias}-near");
        let far_alias = format!("{alias}-far");
        stores.insert(
            alias.to_string(),
            StoreKind::Cache {
                near: near.clone(),
                far: far_alias.clone(),
            },
        );
        add_url(far.as_str(), &far_alias, stores)?;
        // A binary cache substitutes straight into the store in front of it.
        if let Some(StoreKind::BinaryCache { content, .. }) = stores.get_mut(&far_alias)
            && content.is_none()
        {
            *content = Some(near.clone());
        }
        return add_url(&near_url, &near, stores);
    }
    let scheme = parsed.scheme();
    let kind = if let Some(inner) = scheme.strip_prefix("objectstore+") {
        let mut remote = Remote::default();
        let mut options = BTreeMap::new();
        for (key, value) in query {
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| err(format!("{key}={value:?} is not a whole number")))
            };
            match key.as_str() {
                "retries" => remote.retries = number()? as usize,
                "backoff_ms" => remote.backoff_ms = number()?,
                "retry_timeout_ms" => remote.retry_timeout_ms = number()?,
                "request_timeout_ms" => remote.request_timeout_ms = number()?,
                "connect_timeout_ms" => remote.connect_timeout_ms = number()?,
                _ => {
                    options.insert(key, value);
                }
            }
        }
        // Everything after "objectstore+" is the object store's own URL.
        let mut inner_url = parsed.clone();
        inner_url.set_query(None);
        let rest = &inner_url.as_str()[scheme.len()..];
        StoreKind::Objectstore {
            url: format!("{inner}{rest}"),
            options,
            retries: remote.retries,
            backoff_ms: remote.backoff_ms,
            retry_timeout_ms: remote.retry_timeout_ms,
            request_timeout_ms: remote.request_timeout_ms,
            connect_timeout_ms: remote.connect_timeout_ms,
        }
    } else if matches!(scheme, "file" | "http" | "https") {
        let mut trusted_public_keys = Vec::new();
        let mut require_sigs = true;
        let mut negative_ttl_ms = 2000;
        for (key, value) in query {
            match key.as_str() {
                "trusted-public-keys" => {
                    trusted_public_keys.extend(value.split_whitespace().map(str::to_string))
                }
                "require-sigs" => {
                    require_sigs = match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(err(format!(
                                "require-sigs={value:?} is not true or false"
                            )));
                        }
                    }
                }
                "negative-ttl-ms" => {
                    negative_ttl_ms = value
                        .parse()
                        .map_err(|_| err(format!("{key}={value:?} is not a whole number")))?
                }
                _ => {
                    return Err(err(format!(
                        "unknown parameter {key:?} for a binary cache (known: trusted-public-keys, require-sigs, negative-ttl-ms, cache)"
                    )));
                }
            }
        }
        let mut cache_url = parsed.clone();
        cache_url.set_query(None);
        StoreKind::BinaryCache {
            url: cache_url.to_string(),
            trusted_public_keys,
            require_sigs,
            content: None,
            negative_ttl_ms,
        }
    } else {
        let mut compression = Compression::None;
        for (key, value) in &query {
            match (scheme, key.as_str(), value.as_str()) {
                ("local", "compression", "none") => compression = Compression::None,
                ("local", "compression", "zstd") => compression = Compression::Zstd,
                ("local", "compression", other) => {
                    return Err(err(format!(
                        "compression={other:?}: a local store knows none and zstd"
                    )));
                }
                _ => {
                    return Err(err(format!(
                        "unknown parameter {key:?} for a {scheme} store"
                    )));
                }
            }
        }
        match scheme {
            "local" => {
                if parsed.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(err("write local:///DIR (three slashes) or local://".into()));
                }
                let path = parsed.path();
                let path = if path.is_empty() || path == "/" {
                    None
                } else {
                    Some(PathBuf::from(
                        percent_decode(path).map_err(|reason| err(reason.into()))?,
                    ))
                };
                StoreKind::Local { path, compression }
            }
            "memory" => StoreKind::Memory {},
            other => {
                return Err(err(format!(
                    "unknown kind of store {other:?} (known: local://, memory://, objectstore+SCHEME://, file://, http(s)://)"
                )));
            }
        }
    };
    stores.insert(alias.to_string(), kind);
    Ok(())
}

fn set_query(url: &mut url::Url, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
}

fn percent_decode(path: &str) -> Result<String, &'static str> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("truncated percent escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad percent escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad percent escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "path is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_store_url_with_a_cache() {
        let c = Composition::from_url(
            "objectstore+s3://bucket/some/prefix?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A9000&retries=7&cache=local%3A%2F%2F%2Fvar%2Fcache%2Fcairn",
        )
        .expect("valid");
        assert_eq!(c.root, "main");
        assert_eq!(
            c.stores["main"],
            StoreKind::Cache {
                near: "main-near".into(),
                far: "main-far".into()
            }
        );
        assert_eq!(
            c.stores["main-near"],
            StoreKind::Local {
                path: Some("/var/cache/cairn".into()),
                compression: Compression::None,
            }
        );
        let StoreKind::Objectstore {
            url,
            options,
            retries,
            ..
        } = &c.stores["main-far"]
        else {
            panic!("not an object store: {:?}", c.stores["main-far"]);
        };
        assert_eq!(url, "s3://bucket/some/prefix");
        assert_eq!(options["region"], "eu-west-1");
        assert_eq!(options["endpoint"], "http://127.0.0.1:9000");
        assert_eq!(*retries, 7);
        assert_eq!(options.len(), 2);
    }

    #[test]
    fn nested_caches_and_plain_urls() {
        let c = Composition::from_url(
            "objectstore+https://cache.example.org/store?cache=objectstore%2Bfile%3A%2F%2F%2Ftmp%2Fx%3Fcache%3Dmemory%3A%2F%2F",
        )
        .expect("valid");
        assert_eq!(c.stores.len(), 5);
        assert_eq!(c.stores["main-near-near"], StoreKind::Memory {});
        assert_eq!(
            Composition::from_url("memory://").expect("valid").stores["main"],
            StoreKind::Memory {}
        );
        assert_eq!(
            Composition::from_url("local://").expect("valid").stores["main"],
            StoreKind::Local {
                path: None,
                compression: Compression::None,
            }
        );
        assert_eq!(
            Composition::from_url("local:///srv/store?compression=zstd")
                .expect("valid")
                .stores["main"],
            StoreKind::Local {
                path: Some("/srv/store".into()),
                compression: Compression::Zstd,
            }
        );
        assert!(Composition::from_url("local://?compression=lz4").is_err());
    }

    #[test]
    fn bad_urls_say_why() {
        let e = Composition::from_url("tape://drive0")
            .expect_err("unknown")
            .to_string();
        assert!(e.contains("unknown kind of store"), "{e}");
        let e = Composition::from_url("memory://?size=3")
            .expect_err("param")
            .to_string();
        assert!(e.contains("size"), "{e}");
        let e = Composition::from_url("objectstore+s3://b/p?retries=many")
            .expect_err("number")
            .to_string();
        assert!(e.contains("whole number"), "{e}");
        let e = Composition::from_url("not a url")
            .expect_err("not a url")
            .to_string();
        assert!(e.contains("not a url"), "{e}");
    }
}

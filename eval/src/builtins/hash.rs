//! Hashing builtins: `hashString`, `hashFile`, `convertHash`.

use crate::error::{Result, err};
use crate::eval::Eval;
use crate::pos::Pos;
use crate::store::{hex, nixbase32, nixbase32_decode};
use crate::symbol::sym;
use crate::value::*;
use data_encoding::BASE64;
use md5::Digest as _;
use sha2::Digest as _;

fn hash_size(algo: &str) -> Option<usize> {
    Some(match algo {
        "md5" => 16,
        "sha1" => 20,
        "sha256" => 32,
        "sha512" => 64,
        _ => return None,
    })
}

/// Hashes bytes with a named algorithm.
pub fn digest(algo: &str, data: &[u8]) -> Option<Vec<u8>> {
    Some(match algo {
        "md5" => md5::Md5::digest(data).to_vec(),
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

fn algo_of(ev: &mut Eval, v: &Value, p: Pos) -> Result<String> {
    let a = ev.force_str(v, p)?.lossy();
    if hash_size(&a).is_none() {
        return err(
            format!("unknown hash algorithm '{a}', expect 'md5', 'sha1', 'sha256', or 'sha512'"),
            p,
        );
    }
    Ok(a)
}

pub fn hash_string(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let algo = algo_of(ev, &a[0], p)?;
    let s = ev.force_str(&a[1], p)?.bytes.to_vec();
    Ok(Value::str(
        hex(&digest(&algo, &s).unwrap_or_default()).into_bytes(),
    ))
}

pub fn hash_file(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let algo = algo_of(ev, &a[0], p)?;
    let path = super::files::real_path(ev, &a[1], p)?;
    let data = ev
        .io
        .read_file(&path)
        .map_err(|m| crate::error::Error::new(crate::error::ErrorKind::Eval, m, p))?;
    Ok(Value::str(
        hex(&digest(&algo, &data).unwrap_or_default()).into_bytes(),
    ))
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
        .collect()
}

/// Parses a hash in any of Nix's formats.
pub fn parse_hash(s: &str, algo: Option<&str>) -> std::result::Result<(String, Vec<u8>), String> {
    let (algo, body, sri) =
        if let Some((a, b)) = s.split_once('-').filter(|(a, _)| hash_size(a).is_some()) {
            (a.to_string(), b, true)
        } else if let Some((a, b)) = s.split_once(':') {
            (a.to_string(), b, false)
        } else if let Some(a) = algo {
            (a.to_string(), s, false)
        } else {
            return Err(format!(
                "hash '{s}' does not include a type, nor is the type otherwise known from context"
            ));
        };
    let Some(size) = hash_size(&algo) else {
        return Err(format!("unknown hash algorithm '{algo}'"));
    };
    let b = body.as_bytes();
    let bytes = if sri {
        BASE64.decode(b).ok()
    } else if b.len() == size * 2 {
        unhex(b)
    } else if b.len() == (size * 8).div_ceil(5) {
        nixbase32_decode(b, size)
    } else if b.len() == size.div_ceil(3) * 4 {
        BASE64.decode(b).ok()
    } else {
        None
    };
    match bytes {
        Some(v) if v.len() == size => Ok((algo, v)),
        _ => Err(format!("invalid hash '{s}'")),
    }
}

pub fn convert_hash(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let args = ev.force_attrs(&a[0], p)?;
    let Some(h) = args.get(sym("hash")).cloned() else {
        return err("attribute 'hash' missing", p);
    };
    let h = ev.force_str(&h, p)?.lossy();
    let algo = match args.get(sym("hashAlgo")).cloned() {
        Some(v) => Some(algo_of(ev, &v, p)?),
        None => None,
    };
    let Some(fmt) = args.get(sym("toHashFormat")).cloned() else {
        return err("attribute 'toHashFormat' missing", p);
    };
    let fmt = ev.force_str(&fmt, p)?.lossy();
    let (algo, bytes) = parse_hash(&h, algo.as_deref())
        .map_err(|m| crate::error::Error::new(crate::error::ErrorKind::Eval, m, p))?;
    let out = match fmt.as_str() {
        "base16" => hex(&bytes),
        "nix32" => nixbase32(&bytes),
        "base32" => {
            eprintln!("warning: \"base32\" is a deprecated alias for hash format \"nix32\".");
            nixbase32(&bytes)
        }
        "base64" => BASE64.encode(&bytes),
        "sri" => format!("{algo}-{}", BASE64.encode(&bytes)),
        _ => {
            return err(
                format!(
                    "unknown hash format '{fmt}', expect 'base16', 'base32', 'base64', or 'sri'"
                ),
                p,
            );
        }
    };
    Ok(Value::str(out.into_bytes()))
}

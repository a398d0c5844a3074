//! Local store-path arithmetic: nixbase32, hash compression, NAR
//! serialisation and `makeStorePath`, enough to compute the paths Nix
//! would produce without talking to a store.

use sha2::{Digest, Sha256};
use std::path::Path;

const B32: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Nix's base-32 encoding.
pub fn nixbase32(bytes: &[u8]) -> String {
    let len = (bytes.len() * 8).div_ceil(5);
    let mut s = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let lo = bytes.get(i).map_or(0, |&x| (x as u32) >> j);
        let hi = bytes.get(i + 1).map_or(0, |&x| (x as u32) << (8 - j));
        s.push(B32[((lo | hi) & 0x1f) as usize] as char);
    }
    s
}

/// Decodes Nix's base-32 encoding.
pub fn nixbase32_decode(s: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; out_len];
    for (n, &c) in s.iter().rev().enumerate() {
        let d = B32.iter().position(|&x| x == c)? as u32;
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        if i < out_len {
            out[i] |= (d << j) as u8;
        }
        let carry = d >> (8 - j);
        if i + 1 < out_len {
            out[i + 1] |= carry as u8;
        } else if carry != 0 {
            return None;
        }
    }
    Some(out)
}

/// XOR-folds a hash to `n` bytes.
pub fn compress(hash: &[u8], n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    for (i, b) in hash.iter().enumerate() {
        out[i % n] ^= b;
    }
    out
}

/// Nix's `makeStorePath(type, hash, name)` with a sha256 inner hash.
pub fn make_store_path(store_dir: &str, ty: &str, inner_sha256: &[u8], name: &str) -> String {
    let fp = format!("{ty}:sha256:{}:{store_dir}:{name}", hex(inner_sha256));
    let h = Sha256::digest(fp.as_bytes());
    format!("{store_dir}/{}-{name}", nixbase32(&compress(&h, 20)))
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

fn nar_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
    let pad = (8 - s.len() % 8) % 8;
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// Serialises a filesystem tree as a NAR.
pub fn nar(path: &Path) -> std::io::Result<Vec<u8>> {
    nar_filtered(path, &mut |_, _| Ok(true))
}

/// A filter deciding, from a path and its type name (`regular`,
/// `directory`, `symlink`), whether a directory entry is included.
pub type NarFilter<'a> = dyn FnMut(&Path, &str) -> std::io::Result<bool> + 'a;

/// Serialises a filesystem tree as a NAR, keeping only entries accepted
/// by `filter` (the root is always included).
pub fn nar_filtered(path: &Path, filter: &mut NarFilter) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    nar_str(&mut out, b"nix-archive-1");
    nar_node(&mut out, path, filter)?;
    Ok(out)
}

fn nar_node(out: &mut Vec<u8>, path: &Path, filter: &mut NarFilter) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::symlink_metadata(path)?;
    nar_str(out, b"(");
    nar_str(out, b"type");
    if md.file_type().is_symlink() {
        nar_str(out, b"symlink");
        nar_str(out, b"target");
        nar_str(out, std::fs::read_link(path)?.as_os_str().as_bytes());
    } else if md.is_dir() {
        nar_str(out, b"directory");
        let mut names: Vec<_> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for n in names {
            let child = path.join(&n);
            let ft = std::fs::symlink_metadata(&child)?.file_type();
            let tn = if ft.is_symlink() {
                "symlink"
            } else if ft.is_dir() {
                "directory"
            } else if ft.is_file() {
                "regular"
            } else {
                "unknown"
            };
            if !filter(&child, tn)? {
                continue;
            }
            nar_str(out, b"entry");
            nar_str(out, b"(");
            nar_str(out, b"name");
            nar_str(out, n.as_bytes());
            nar_str(out, b"node");
            nar_node(out, &child, filter)?;
            nar_str(out, b")");
        }
    } else {
        nar_str(out, b"regular");
        if md.permissions().mode() & 0o100 != 0 {
            nar_str(out, b"executable");
            nar_str(out, b"");
        }
        nar_str(out, b"contents");
        nar_str(out, &std::fs::read(path)?);
    }
    nar_str(out, b")");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_roundtrip() {
        let h = Sha256::digest(b"abc");
        let s = nixbase32(&h);
        assert_eq!(s.len(), 52);
        assert_eq!(
            nixbase32_decode(s.as_bytes(), 32).unwrap_or_default(),
            h.to_vec()
        );
    }
}

//! The text form of a [`PathInfo`], as kept in object stores: one
//! `Key: value` line per field, in this order (Sig lines repeat):
//!
//! ```text
//! StorePath: <hash>-<name>
//! Node: <base64 of the root node, castore's canonical encoding>
//! NarHash: <64 lowercase hex digits of the NAR's sha256>
//! NarSize: <bytes>
//! References: <hash>-<name> ...
//! Deriver: <hash>-<name>          (optional)
//! Sig: <key name>:<base64>        (zero or more)
//! CA: <content address>           (optional)
//! RegistrationTime: <seconds since the epoch>
//! ```
//!
//! The parser takes untrusted bytes: anything it does not understand is a
//! [`PathInfoTextError`], never a panic.

use data_encoding::{BASE64, HEXLOWER};

use crate::path_info::{PathInfo, decode_root_node};
use crate::signing::Signature;
use crate::store_path::{ContentAddress, StorePath};

/// Why a text PathInfo was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathInfoTextError {
    #[error("line {0}: expected `Key: value`")]
    Syntax(usize),
    #[error("field {0} appears twice")]
    Duplicate(&'static str),
    #[error("field {0} is missing")]
    Missing(&'static str),
    #[error("unknown field {0:?}")]
    UnknownField(String),
    #[error("field {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl ToString) -> PathInfoTextError {
    PathInfoTextError::Invalid {
        field,
        reason: reason.to_string(),
    }
}

/// Renders `info` in the text form. Fails only if the root node cannot be
/// encoded under the path's name.
pub fn to_text(info: &PathInfo) -> Result<String, PathInfoTextError> {
    let node = info.encoded_node().map_err(|e| invalid("Node", e))?;
    let mut out = String::with_capacity(256);
    out.push_str(&format!("StorePath: {}\n", info.store_path.to_base_name()));
    out.push_str(&format!("Node: {}\n", BASE64.encode(&node)));
    out.push_str(&format!("NarHash: {}\n", HEXLOWER.encode(&info.nar_sha256)));
    out.push_str(&format!("NarSize: {}\n", info.nar_size));
    let refs: Vec<String> = info.references.iter().map(|r| r.to_base_name()).collect();
    out.push_str(&format!("References: {}\n", refs.join(" ")));
    if let Some(deriver) = &info.deriver {
        out.push_str(&format!("Deriver: {}\n", deriver.to_base_name()));
    }
    for sig in &info.signatures {
        out.push_str(&format!("Sig: {sig}\n"));
    }
    if let Some(ca) = &info.ca {
        out.push_str(&format!("CA: {ca}\n"));
    }
    out.push_str(&format!("RegistrationTime: {}\n", info.registration_time));
    Ok(out)
}

/// Parses the text form.
pub fn from_text(text: &str) -> Result<PathInfo, PathInfoTextError> {
    let mut store_path = None;
    let mut node = None;
    let mut nar_sha256 = None;
    let mut nar_size = None;
    let mut references = None;
    let mut deriver = None;
    let mut signatures = Vec::new();
    let mut ca = None;
    let mut registration_time = None;
    fn once<T>(
        slot: &mut Option<T>,
        field: &'static str,
        value: T,
    ) -> Result<(), PathInfoTextError> {
        if slot.is_some() {
            return Err(PathInfoTextError::Duplicate(field));
        }
        *slot = Some(value);
        Ok(())
    }
    for (number, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once(": ")
            .ok_or(PathInfoTextError::Syntax(number + 1))?;
        match key {
            "StorePath" => once(
                &mut store_path,
                "StorePath",
                StorePath::from_base_name(value).map_err(|e| invalid("StorePath", e))?,
            )?,
            "Node" => {
                let bytes = BASE64
                    .decode(value.as_bytes())
                    .map_err(|e| invalid("Node", e))?;
                once(
                    &mut node,
                    "Node",
                    decode_root_node(&bytes).map_err(|e| invalid("Node", e))?,
                )?
            }
            "NarHash" => {
                let bytes = HEXLOWER
                    .decode(value.as_bytes())
                    .map_err(|e| invalid("NarHash", e))?;
                let hash: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| invalid("NarHash", "not 32 bytes"))?;
                once(&mut nar_sha256, "NarHash", hash)?
            }
            "NarSize" => once(
                &mut nar_size,
                "NarSize",
                value.parse::<u64>().map_err(|e| invalid("NarSize", e))?,
            )?,
            "References" => once(
                &mut references,
                "References",
                value
                    .split_whitespace()
                    .map(StorePath::from_base_name)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("References", e))?,
            )?,
            "Deriver" => once(
                &mut deriver,
                "Deriver",
                StorePath::from_base_name(value).map_err(|e| invalid("Deriver", e))?,
            )?,
            "Sig" => signatures.push(value.parse::<Signature>().map_err(|e| invalid("Sig", e))?),
            "CA" => once(
                &mut ca,
                "CA",
                value
                    .parse::<ContentAddress>()
                    .map_err(|e| invalid("CA", e))?,
            )?,
            "RegistrationTime" => once(
                &mut registration_time,
                "RegistrationTime",
                value
                    .parse::<i64>()
                    .map_err(|e| invalid("RegistrationTime", e))?,
            )?,
            other => return Err(PathInfoTextError::UnknownField(other.to_string())),
        }
    }
    Ok(PathInfo {
        store_path: store_path.ok_or(PathInfoTextError::Missing("StorePath"))?,
        node: node.ok_or(PathInfoTextError::Missing("Node"))?,
        references: references.ok_or(PathInfoTextError::Missing("References"))?,
        nar_size: nar_size.ok_or(PathInfoTextError::Missing("NarSize"))?,
        nar_sha256: nar_sha256.ok_or(PathInfoTextError::Missing("NarHash"))?,
        signatures,
        deriver,
        ca,
        registration_time: registration_time.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_castore::{Digest, Node};
    use proptest::prelude::*;

    fn store_path(hash: [u8; 20], name: &str) -> StorePath {
        StorePath::from_parts(hash, name).expect("valid store path")
    }

    proptest! {
        #[test]
        fn text_round_trips(
            hash in any::<[u8; 20]>(),
            name in "[a-z][a-z0-9.+_-]{0,30}",
            content in any::<[u8; 8]>(),
            size in any::<u64>(),
            executable in any::<bool>(),
            nar_size in any::<u64>(),
            nar_sha256 in any::<[u8; 32]>(),
            refs in proptest::collection::vec(any::<[u8; 20]>(), 0..4),
            with_deriver in any::<bool>(),
            time in any::<i64>(),
        ) {
            let info = PathInfo {
                store_path: store_path(hash, &name),
                node: Node::File { digest: Digest::of(&content), size, executable },
                references: refs.iter().map(|r| store_path(*r, "dep")).collect(),
                nar_size,
                nar_sha256,
                signatures: vec![],
                deriver: with_deriver.then(|| store_path(hash, "x.drv")),
                ca: None,
                registration_time: time,
            };
            let text = to_text(&info).expect("renders");
            prop_assert_eq!(from_text(&text).expect("parses"), info);
        }

        #[test]
        fn arbitrary_text_gives_an_error_or_a_value_that_round_trips(text in "\\PC{0,300}") {
            if let Ok(info) = from_text(&text) {
                let again = from_text(&to_text(&info).expect("renders")).expect("parses");
                prop_assert_eq!(again, info);
            }
        }
    }

    #[test]
    fn damaged_text_is_refused() {
        let info = PathInfo {
            store_path: store_path([7; 20], "hello"),
            node: Node::Symlink {
                target: cairn_castore::SymlinkTarget::new(bytes::Bytes::from_static(b"/x"))
                    .expect("target"),
            },
            references: vec![],
            nar_size: 12,
            nar_sha256: [1; 32],
            signatures: vec![],
            deriver: None,
            ca: None,
            registration_time: 5,
        };
        let text = to_text(&info).expect("renders");
        assert_eq!(from_text(&text), Ok(info));
        assert_eq!(
            from_text(&text.replace("NarSize: 12\n", "")),
            Err(PathInfoTextError::Missing("NarSize"))
        );
        assert_eq!(
            from_text(&format!("{text}NarSize: 3\n")),
            Err(PathInfoTextError::Duplicate("NarSize"))
        );
        assert!(matches!(
            from_text(&text.replace("NarHash: 01", "NarHash: zz")),
            Err(PathInfoTextError::Invalid {
                field: "NarHash",
                ..
            })
        ));
        assert_eq!(from_text("garbage"), Err(PathInfoTextError::Syntax(1)));
    }
}

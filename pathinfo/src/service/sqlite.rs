//! A PathInfoService in SQLite: the embedded default store's path database.
//!
//! Schema (version 1): one row per store path, keyed by the nixbase32 hash
//! part, holding the root node in castore's canonical encoding (as a
//! one-entry directory), references and signatures as text, the NAR hash and
//! size. WAL mode, so a mount reading the database sees paths added by
//! another process. Migrations are numbered by `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{PathInfoError, PathInfoService};
use crate::path_info::{PathInfo, decode_root_node};
use crate::signing::Signature;
use crate::store_path::{ContentAddress, StorePath};

const SCHEMA_VERSION: i64 = 1;

/// PathInfo in a SQLite database file.
pub struct SqlitePathInfoService {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqlitePathInfoService {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PathInfoError> {
        let path = path.as_ref().to_path_buf();
        let err = |source| PathInfoError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(60))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(PathInfoError::NewerSchema {
                path: path.display().to_string(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if version < 1 {
            conn.execute_batch(
                "BEGIN IMMEDIATE;
                 CREATE TABLE IF NOT EXISTS path_infos (
                     hash TEXT PRIMARY KEY,
                     name TEXT NOT NULL,
                     node BLOB NOT NULL,
                     nar_size INTEGER NOT NULL,
                     nar_sha256 BLOB NOT NULL,
                     refs TEXT NOT NULL,
                     signatures TEXT NOT NULL,
                     deriver TEXT,
                     ca TEXT,
                     registration_time INTEGER NOT NULL
                 );
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .map_err(err)?;
        }
        Ok(SqlitePathInfoService {
            path,
            conn: Mutex::new(conn),
        })
    }

    fn sqlite_err(&self, source: rusqlite::Error) -> PathInfoError {
        PathInfoError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }
}

struct Row {
    hash: String,
    name: String,
    node: Vec<u8>,
    nar_size: i64,
    nar_sha256: Vec<u8>,
    refs: String,
    signatures: String,
    deriver: Option<String>,
    ca: Option<String>,
    registration_time: i64,
}

const COLUMNS: &str =
    "hash, name, node, nar_size, nar_sha256, refs, signatures, deriver, ca, registration_time";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        hash: row.get(0)?,
        name: row.get(1)?,
        node: row.get(2)?,
        nar_size: row.get(3)?,
        nar_sha256: row.get(4)?,
        refs: row.get(5)?,
        signatures: row.get(6)?,
        deriver: row.get(7)?,
        ca: row.get(8)?,
        registration_time: row.get(9)?,
    })
}

impl Row {
    fn into_path_info(self) -> Result<PathInfo, PathInfoError> {
        let base = format!("{}-{}", self.hash, self.name);
        let corrupt = |reason: String| PathInfoError::Corrupt {
            path: base.clone(),
            reason,
        };
        let store_path = StorePath::from_base_name(&base).map_err(|e| corrupt(e.to_string()))?;
        let node = decode_root_node(&self.node).map_err(|e| corrupt(e.to_string()))?;
        let references = self
            .refs
            .split_whitespace()
            .map(StorePath::from_base_name)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt(e.to_string()))?;
        let signatures = self
            .signatures
            .split_whitespace()
            .map(|s| s.parse::<Signature>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt(e.to_string()))?;
        let deriver = self
            .deriver
            .as_deref()
            .map(StorePath::from_base_name)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        let ca = self
            .ca
            .as_deref()
            .map(|s| s.parse::<ContentAddress>())
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        let nar_sha256: [u8; 32] = self
            .nar_sha256
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("NAR hash is not 32 bytes".into()))?;
        Ok(PathInfo {
            store_path,
            node,
            references,
            nar_size: self.nar_size as u64,
            nar_sha256,
            signatures,
            deriver,
            ca,
            registration_time: self.registration_time,
        })
    }
}

#[async_trait]
impl PathInfoService for SqlitePathInfoService {
    async fn get(&self, digest: &[u8; 20]) -> Result<Option<PathInfo>, PathInfoError> {
        let hash = crate::nixbase32::encode(digest);
        let row = {
            let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM path_infos WHERE hash = ?1"))
                .and_then(|mut stmt| stmt.query_row([&hash], read_row).optional())
                .map_err(|e| self.sqlite_err(e))?
        };
        row.map(Row::into_path_info).transpose()
    }

    async fn put(&self, info: PathInfo) -> Result<(), PathInfoError> {
        let node = info.encoded_node().map_err(|e| PathInfoError::Corrupt {
            path: info.store_path.to_base_name(),
            reason: e.to_string(),
        })?;
        let refs: Vec<String> = info.references.iter().map(|r| r.to_base_name()).collect();
        let sigs: Vec<String> = info.signatures.iter().map(|s| s.to_string()).collect();
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute(
            &format!(
                "INSERT OR REPLACE INTO path_infos ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ),
            params![
                info.store_path.hash_part(),
                info.store_path.name(),
                node.as_ref(),
                info.nar_size as i64,
                info.nar_sha256.as_slice(),
                refs.join(" "),
                sigs.join(" "),
                info.deriver.as_ref().map(|d| d.to_base_name()),
                info.ca.as_ref().map(|c| c.to_string()),
                info.registration_time,
            ],
        )
        .map_err(|e| self.sqlite_err(e))?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<PathInfo>, PathInfoError> {
        let rows = {
            let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            let mut stmt = conn
                .prepare(&format!("SELECT {COLUMNS} FROM path_infos"))
                .map_err(|e| self.sqlite_err(e))?;
            stmt.query_map([], read_row)
                .map_err(|e| self.sqlite_err(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.sqlite_err(e))?
        };
        let mut all = rows
            .into_iter()
            .map(Row::into_path_info)
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by(|a, b| a.store_path.cmp(&b.store_path));
        Ok(all)
    }
}

//! `cairn path-info [--json] STORE_PATH...`, output as `nix path-info`.

use std::process::ExitCode;

use cairn_pathinfo::hash::NixHash;
use serde_json::{Value, json};

use crate::store_location::StoreLocation;

#[derive(clap::Args)]
pub struct PathInfoArgs {
    /// Print JSON, fields as `nix path-info --json`.
    #[arg(long)]
    json: bool,
    /// Store paths (all registered paths when none are given).
    store_paths: Vec<String>,
}

pub async fn run(location: &StoreLocation, args: PathInfoArgs) -> anyhow::Result<ExitCode> {
    let store = location.open_store()?;
    let mut infos = Vec::new();
    if args.store_paths.is_empty() {
        infos = store.paths.list().await?;
    } else {
        for text in &args.store_paths {
            infos.push(super::nar::lookup(&store, text).await?);
        }
        infos.sort_by(|a, b| a.store_path.cmp(&b.store_path));
        infos.dedup_by(|a, b| a.store_path == b.store_path);
    }
    let dir = &store.store_dir;
    if args.json {
        let values: Vec<Value> = infos
            .iter()
            .map(|info| {
                let mut v = json!({
                    "path": dir.display_path(&info.store_path),
                    "narHash": NixHash::Sha256(info.nar_sha256).to_sri(),
                    "narSize": info.nar_size,
                    "references": info.references.iter().map(|r| dir.display_path(r)).collect::<Vec<_>>(),
                });
                if let Some(ca) = &info.ca {
                    v["ca"] = json!(ca.to_string());
                }
                if let Some(d) = &info.deriver {
                    v["deriver"] = json!(dir.display_path(d));
                }
                v["registrationTime"] = json!(info.registration_time);
                if !info.signatures.is_empty() {
                    v["signatures"] =
                        json!(info.signatures.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string(&values)?);
    } else {
        for info in &infos {
            println!("{}", dir.display_path(&info.store_path));
        }
    }
    Ok(ExitCode::SUCCESS)
}

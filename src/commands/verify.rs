//! `cairn store verify`

use std::process::ExitCode;

use cairn_castore::verify::verify_store;
use cairn_pathinfo::render::{RenderOptions, render_nar};

use crate::store_location::StoreLocation;

pub async fn run(location: &StoreLocation) -> anyhow::Result<ExitCode> {
    let store = location.open_store()?;
    let report = verify_store(&store.castore).await?;
    for problem in &report.problems {
        eprintln!("{problem}");
    }
    let mut path_problems = 0;
    let infos = store.paths.list().await?;
    for info in &infos {
        let shown = store.store_dir.display_path(&info.store_path);
        match render_nar(
            &store.castore,
            &info.node,
            tokio::io::sink(),
            RenderOptions::default(),
        )
        .await
        {
            Ok((_, r)) if r.nar_sha256 == info.nar_sha256 && r.nar_size == info.nar_size => {}
            Ok(_) => {
                eprintln!("{shown}: NAR hash or size differs from the registered one");
                path_problems += 1;
            }
            Err(e) => {
                eprintln!("{shown}: {e}");
                path_problems += 1;
            }
        }
    }
    let copies = cairn_fs::verify_copies(&crate::commands::whole_files::default_dir(location))?;
    for bad in &copies.bad {
        eprintln!(
            "{}: whole-file copy differs from its digest (removed)",
            bad.display()
        );
    }
    let problems = report.problems.len() + path_problems + copies.bad.len();
    println!(
        "checked {} chunks, {} chunk maps, {} directories, {} store paths, {} whole-file copies: {} problems",
        report.chunks,
        report.chunk_maps,
        report.directories,
        infos.len(),
        copies.good + copies.bad.len() as u64,
        problems
    );
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

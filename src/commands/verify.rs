//! `cairn store verify`

use std::process::ExitCode;

use cairn_castore::verify::verify_store;

use crate::store_location::StoreLocation;

pub async fn run(location: &StoreLocation) -> anyhow::Result<ExitCode> {
    let store = location.open()?;
    let report = verify_store(&store).await?;
    for problem in &report.problems {
        eprintln!("{problem}");
    }
    println!(
        "checked {} chunks, {} chunk maps, {} directories: {} problems",
        report.chunks,
        report.chunk_maps,
        report.directories,
        report.problems.len()
    );
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

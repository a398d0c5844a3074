//! `cairn import PATH...`

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cairn_castore::Node;
use cairn_castore::import::{ImportOptions, import_scanned, scan};

use crate::store_location::StoreLocation;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Files or directories to import (symlinks are stored, not followed).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print only the digests, no progress bar.
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(location: &StoreLocation, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    // The walk needs no store: it runs while the store opens (a new store
    // creates and syncs its index first). Nothing is written before both
    // are done. A store that fails to open is reported at once: the walk's
    // thread is not waited for, and ends with the process.
    let paths = args.paths.clone();
    let (scanned, scanning) = tokio::sync::oneshot::channel();
    // Unnamed: the walk starts the rayon threads that go on to read the
    // files, and a thread's name passes to the threads it starts.
    std::thread::Builder::new().spawn(move || {
        let _ = scanned.send(scan(&paths));
    })?;
    let store = location.open()?;
    tracing::info!(elapsed = ?started.elapsed(), "import: store opened");
    let tree = scanning.await??;
    let mut options = ImportOptions::default();
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(tree.total_bytes());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    if let Some(bar) = &bar {
        let bar = bar.clone();
        options.progress = Some(Arc::new(move |n| bar.inc(n)));
    }
    let nodes = import_scanned(&store, tree, options).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for (path, node) in args.paths.iter().zip(nodes) {
        let line = match &node {
            Node::Directory { digest, .. } | Node::File { digest, .. } => digest.to_string(),
            Node::Symlink { target } => format!("symlink:{target:?}"),
        };
        if args.quiet {
            println!("{line}");
        } else {
            println!("{line}\t{:?}\t{}", node, path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

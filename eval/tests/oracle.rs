//! The project's own language cases (`tests/cases/*.nix`), evaluated with
//! `cairn eval --strict` semantics and compared with
//! `nix-instantiate --eval --strict` (Nix 2.8) as the oracle. Cases whose
//! names start with `fail-` must fail in both. Skipped when
//! nix-instantiate is not installed.

use cairn_eval::cli::{EvalArgs, eval_capture};
use std::path::{Path, PathBuf};
use std::process::Command;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("cases directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "nix"))
        .collect();
    v.sort();
    v
}

fn ours(path: &Path) -> Result<Vec<u8>, String> {
    eval_capture(EvalArgs {
        files: vec![path.display().to_string()],
        strict: true,
        ..Default::default()
    })
}

#[test]
fn cases_match_nix_instantiate() {
    if Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("nix-instantiate not installed; skipping oracle comparison");
        return;
    }
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() > 30, "expected the case files");
    for case in &all {
        let nix = Command::new("nix-instantiate")
            .args(["--eval", "--strict"])
            .arg(case)
            .env("NIX_REMOTE", "dummy://")
            .output()
            .expect("run nix-instantiate");
        let mine = ours(case);
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match (nix.status.success(), &mine) {
            (true, Ok(out)) if *out == nix.stdout => {}
            (false, Err(_)) => {}
            _ => failures.push(format!(
                "{name}: nix {:?} / ours {:?}",
                String::from_utf8_lossy(if nix.status.success() {
                    &nix.stdout
                } else {
                    &nix.stderr
                }),
                mine.as_ref()
                    .map(|o| String::from_utf8_lossy(o).into_owned())
            )),
        }
        if name.starts_with("fail-") {
            assert!(mine.is_err(), "{name} must fail");
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

//! `cairn store show-config`: the composition `--store` resolves to.

use std::process::ExitCode;

use crate::store_location::StoreLocation;

pub fn run(location: &StoreLocation) -> anyhow::Result<ExitCode> {
    let composition = location.composition()?;
    print!("{}", composition.to_toml());
    Ok(ExitCode::SUCCESS)
}

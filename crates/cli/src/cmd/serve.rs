//! `dreamgate serve` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `dreamgate serve`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dreamgate serve`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dreamgate serve` is not implemented yet")
}

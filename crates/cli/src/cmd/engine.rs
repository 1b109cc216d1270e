//! `dreamgate engine` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `dreamgate engine`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dreamgate engine`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dreamgate engine` is not implemented yet")
}

//! `dreamgate watch` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `dreamgate watch`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dreamgate watch`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dreamgate watch` is not implemented yet")
}

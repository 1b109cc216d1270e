//! `dreamgate bench` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `dreamgate bench`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dreamgate bench`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dreamgate bench` is not implemented yet")
}

//! `dreamgate ingest` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `dreamgate ingest`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `dreamgate ingest`.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dreamgate ingest` is not implemented yet")
}

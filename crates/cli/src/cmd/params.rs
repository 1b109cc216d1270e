//! `dreamgate params` (not implemented yet).

use std::process::ExitCode;

/// Subcommands of `dreamgate params`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Placeholder until implemented.
    Todo,
}

/// Runs `dreamgate params`.
pub async fn run(_command: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dreamgate params` is not implemented yet")
}

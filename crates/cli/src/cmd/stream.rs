//! `dreamgate stream` (not implemented yet).

use std::process::ExitCode;

/// Subcommands of `dreamgate stream`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Placeholder until implemented.
    Todo,
}

/// Runs `dreamgate stream`.
pub async fn run(_command: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dreamgate stream` is not implemented yet")
}

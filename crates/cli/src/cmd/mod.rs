//! One module per subcommand group. Each exposes clap argument types and an
//! async `run` returning the process exit code.

pub mod bench;
pub mod conformance;
pub mod engine;
pub mod ingest;
pub mod limits;
pub mod params;
pub mod serve;
pub mod stream;
pub mod watch;

/// How the servers (`serve`, `engine`) write their logs on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `message`
    /// and the event's fields at the top level), for log collectors.
    Json,
}

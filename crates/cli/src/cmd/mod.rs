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

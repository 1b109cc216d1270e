//! Connection limits shared by `dreamgate serve` and `dreamgate engine`
//! (see `dreamgate_serve::ServeLimits` for what each one does and why its default).

use std::time::Duration;

use anyhow::bail;
use dreamgate_serve::ServeLimits;

/// `--header-timeout`, `--idle-timeout`, `--body-timeout`, `--max-connections`, `--max-connections-per-ip`.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Close a connection whose request head is not complete within this many seconds
    /// (from its start, or from the first byte of a new request on a kept-alive connection).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Close a kept-alive connection idle (no request) for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub idle_timeout: f64,
    /// Answer 408 and close when a request body is not received in full within this many
    /// seconds of its head.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub body_timeout: f64,
    /// Open connections at most (never more than 3/4 of the open-file limit); further ones are
    /// closed at once.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Open connections per client IP address (IPv6: per /64) at most; further ones are closed at
    /// once. Behind a reverse proxy every connection comes from the proxy: raise it to --max-connections.
    #[arg(long = "max-connections-per-ip", value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_ip: u32,
}

fn seconds(name: &str, value: f64) -> anyhow::Result<Duration> {
    if !value.is_finite() || value <= 0.0 || value > 86_400.0 {
        bail!("--{name} must be a positive number of seconds (at most 86400), got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

impl LimitArgs {
    /// The limits these flags describe (other fields at their defaults).
    pub fn limits(&self) -> anyhow::Result<ServeLimits> {
        Ok(ServeLimits {
            header_timeout: seconds("header-timeout", self.header_timeout)?,
            idle_timeout: seconds("idle-timeout", self.idle_timeout)?,
            body_timeout: seconds("body-timeout", self.body_timeout)?,
            max_connections: self.max_connections as usize,
            max_connections_per_ip: self.max_connections_per_ip as usize,
            ..ServeLimits::default()
        })
    }
}

/// Raises the soft open-file limit to the hard one (every connection is a file), and says so.
pub fn raise_file_limit() {
    match dreamgate_serve::raise_nofile_limit() {
        Ok(l) if l.after > l.before => tracing::info!(from = l.before, to = l.after, "open-file limit raised"),
        Ok(l) => tracing::debug!(limit = l.after, "open-file limit already at its hard limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        limits: LimitArgs,
    }

    #[test]
    fn defaults_are_the_library_defaults() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.limits.limits().unwrap(), ServeLimits::default());
    }

    #[test]
    fn flags_set_each_limit_and_bad_values_are_refused() {
        let cli = Cli::try_parse_from([
            "x",
            "--header-timeout",
            "0.3",
            "--idle-timeout",
            "5",
            "--body-timeout",
            "7",
            "--max-connections",
            "100",
            "--max-connections-per-ip",
            "3",
        ])
        .unwrap();
        let l = cli.limits.limits().unwrap();
        assert_eq!(l.header_timeout, Duration::from_millis(300));
        assert_eq!((l.idle_timeout, l.body_timeout), (Duration::from_secs(5), Duration::from_secs(7)));
        assert_eq!((l.max_connections, l.max_connections_per_ip), (100, 3));
        assert!(Cli::try_parse_from(["x", "--max-connections", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "--max-connections-per-ip", "0"]).is_err());
        let zero = Cli::try_parse_from(["x", "--body-timeout", "0"]).unwrap();
        assert!(zero.limits.limits().unwrap_err().to_string().contains("--body-timeout"));
    }
}

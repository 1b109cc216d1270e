//! `dreamgate stream`: call the Daydream streams API (or a `dreamgate engine`).
//!
//! ```text
//! dreamgate stream create [--file payload.json] [--name NAME]
//! dreamgate stream get STREAM_ID
//! dreamgate stream status STREAM_ID
//! dreamgate stream update STREAM_ID (--file body.json | --prompt TEXT [--model-id ID])
//! dreamgate stream delete STREAM_ID
//! ```
//!
//! Every subcommand takes `--gateway URL` (default: DAYDREAM_API_GATEWAY, else
//! https://api.daydream.live), `--api-key KEY` (default: DAYDREAM_API_KEY) and `--timeout SECS`.
//! Answers are printed as JSON on stdout. Exit codes: 0 success, 1 the API answered an error
//! (status, code, message and field errors on stderr) or could not be reached, 2 bad local
//! input or configuration.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use dreamgate_client::{ApiError, ApiKey, DaydreamClient, DaydreamEnv};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt as _;

/// Exit code when the API answers an error or cannot be reached.
const EXIT_API: u8 = 1;
/// Exit code for bad local input or configuration.
const EXIT_LOCAL: u8 = 2;

/// Where and how to call the API. `Debug` never shows the key (it is an [`ApiKey`]).
#[derive(Debug, clap::Args)]
pub struct Conn {
    /// API base URL (overrides DAYDREAM_API_GATEWAY; https required except for loopback hosts).
    #[arg(long, value_name = "URL")]
    gateway: Option<String>,
    /// API key (default: DAYDREAM_API_KEY). Never printed.
    #[arg(long, value_name = "KEY", env = "DAYDREAM_API_KEY", hide_env_values = true)]
    api_key: Option<ApiKey>,
    /// Timeout of the call, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    timeout: f64,
}

/// Subcommands of `dreamgate stream`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a stream (POST /v1/streams) from the default payload or --file.
    Create {
        /// Create payload ({pipeline, params}); `-` reads stdin. Default: the model's defaults.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Stream name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a stream (GET /v1/streams/{id}).
    Get {
        /// Stream id (`str_...`).
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a stream's status (GET /v1/streams/{id}/status).
    Status {
        /// Stream id (`str_...`).
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Update a stream's params (PATCH /v1/streams/{id}).
    Update {
        /// Stream id (`str_...`).
        id: String,
        /// Update body ({pipeline, params} or {params}); `-` reads stdin.
        #[arg(long, value_name = "PATH", conflicts_with = "prompt", required_unless_present = "prompt")]
        file: Option<PathBuf>,
        /// New prompt (sent as {pipeline, params:{model_id, prompt}}).
        #[arg(long)]
        prompt: Option<String>,
        /// model_id sent with --prompt (must be the stream's model). Default: the model's default.
        #[arg(long, value_name = "ID", requires = "prompt")]
        model_id: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a stream (DELETE /v1/streams?id=).
    Delete {
        /// Stream id (`str_...`).
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Runs `dreamgate stream`.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let conn = match &command {
        Command::Create { conn, .. }
        | Command::Get { conn, .. }
        | Command::Status { conn, .. }
        | Command::Update { conn, .. }
        | Command::Delete { conn, .. } => conn,
    };
    let client = match connect(conn) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(EXIT_LOCAL));
        }
    };
    // the one `--file` reader (create payload or update body)
    let from_file = match &command {
        Command::Create { file: Some(path), .. } | Command::Update { file: Some(path), .. } => {
            match read_json(path).await {
                Ok(v) => Some(v),
                Err(e) => return local_error(e),
            }
        }
        _ => None,
    };
    let result = match &command {
        Command::Create { name, .. } => {
            let mut body = match from_file {
                Some(v) => v,
                None => serde_json::to_value(dreamgate_model::default_create_payload())?,
            };
            if let (Some(name), Some(obj)) = (name, body.as_object_mut()) {
                obj.insert("name".into(), json!(name));
            }
            client.create_stream(&body).await
        }
        Command::Get { id, .. } => client.get_stream(id).await,
        Command::Status { id, .. } => client.stream_status(id).await,
        Command::Update { id, prompt, model_id, .. } => {
            let body = match (from_file, prompt) {
                (Some(body), _) => body,
                (None, Some(prompt)) => {
                    let model = match model_id {
                        Some(m) => m.clone(),
                        None => dreamgate_model::default_params().model_id.unwrap_or_default(),
                    };
                    let mut params = serde_json::Map::new();
                    params.insert("prompt".into(), json!(prompt));
                    dreamgate_model::update_body(&model, params)
                }
                (None, None) => return local_error(anyhow::anyhow!("give --file or --prompt")),
            };
            client
                .update_stream(id, &body)
                .await
                .map(|v| v.unwrap_or_else(|| json!({ "success": true, "updated": id })))
        }
        Command::Delete { id, .. } => {
            client.delete_stream(id).await.map(|()| json!({ "success": true, "deleted": id }))
        }
    };
    match result {
        Ok(value) => {
            if matches!(command, Command::Status { .. }) {
                // either documented shape (runner or public reference), summarised for people
                eprintln!("{}", dreamgate_client::StreamStatus::from_json(&value).summary());
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            report(&e);
            Ok(ExitCode::from(EXIT_API))
        }
    }
}

fn local_error(e: anyhow::Error) -> anyhow::Result<ExitCode> {
    eprintln!("error: {e:#}");
    Ok(ExitCode::from(EXIT_LOCAL))
}

/// Validates the environment (with the command-line overrides) and builds the client.
fn connect(conn: &Conn) -> anyhow::Result<DaydreamClient> {
    let env = DaydreamEnv::from_vars(|name| match name {
        "DAYDREAM_API_GATEWAY" if conn.gateway.is_some() => conn.gateway.clone(),
        "DAYDREAM_API_KEY" => conn.api_key.as_ref().map(|k| k.expose().to_owned()),
        _ => std::env::var(name).ok(),
    });
    let env = match (env, &conn.gateway) {
        (Err(e @ dreamgate_client::ConfigError::InvalidGateway { .. }), Some(_)) => {
            return Err(anyhow::Error::new(e).context("invalid --gateway"))
        }
        (env, _) => env?,
    };
    for warning in &env.warnings {
        eprintln!("warning: {warning}");
    }
    let key = env.api_key.context("no API key: set DAYDREAM_API_KEY or pass --api-key")?;
    anyhow::ensure!(
        conn.timeout.is_finite() && conn.timeout > 0.0 && conn.timeout <= 3600.0,
        "--timeout must be between 0 and 3600 seconds"
    );
    Ok(DaydreamClient::new(env.gateway, key, Duration::from_secs_f64(conn.timeout))?)
}

async fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        tokio::io::stdin().read_to_string(&mut s).await.context("cannot read stdin")?;
        s
    } else {
        tokio::fs::read_to_string(path).await.with_context(|| format!("cannot read {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// Prints an API error: status, code, message, field errors, then the raw body.
fn report(e: &ApiError) {
    match e {
        ApiError::Upstream { status, body } => {
            let code = e.code().map(|c| format!(" ({c})")).unwrap_or_default();
            eprintln!("error: the API answered {status}{code}: {}", e.message());
            if let Some(details) = body.get("details").and_then(Value::as_array) {
                for d in details {
                    let field = d.get("field").and_then(Value::as_str).unwrap_or("?");
                    let message = d.get("message").and_then(Value::as_str).unwrap_or("");
                    eprintln!("  {field}: {message}");
                }
            }
            if e.is_warming_up() && (*status != 404 || dreamgate_client::body_says_not_ready(body)) {
                eprintln!("  (this looks like a stream still warming up: retry in a few seconds)");
            }
            eprintln!("{body}");
        }
        other => eprintln!("error: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[test]
    fn debug_never_shows_the_api_key() {
        let secret = "daydream_live_DEBUGSECRET_42";
        for args in [
            vec!["x", "get", "str_1", "--api-key", secret],
            vec!["x", "update", "str_1", "--prompt", "p", "--api-key", secret],
            vec!["x", "create", "--file", "-", "--api-key", secret],
        ] {
            let cli = Cli::try_parse_from(&args).unwrap();
            let shown = format!("{cli:?} {cli:#?}");
            assert!(!shown.contains("DEBUGSECRET"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }
}

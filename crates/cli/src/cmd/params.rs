//! `dreamgate params`: print the default create payload, validate a payload.
//!
//! ```text
//! dreamgate params defaults              # default create payload, pretty JSON
//! dreamgate params check payload.json    # normalised payload, or one `field: message` per line
//! dreamgate params check --update -      # check an update body read from stdin
//! ```
//!
//! Exit codes of `check`: 0 valid, 1 invalid payload (the field errors are
//! printed on stdout), 2 unreadable input or not JSON (message on stderr).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;
use tokio::io::AsyncReadExt as _;

/// Exit code for a payload that fails validation.
const EXIT_INVALID: u8 = 1;
/// Exit code for input that cannot be read or is not JSON.
const EXIT_BAD_INPUT: u8 = 2;

/// Subcommands of `dreamgate params`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the default create payload ({ "pipeline": "streamdiffusion", "params": {...} }).
    Defaults,
    /// Validate a create payload (or, with --update, an update body) and print it normalised.
    ///
    /// Accepts {pipeline, params} and legacy {pipeline_id, pipeline_params}; with --update
    /// also {params} or a flat params object. Prints every problem as `field: message`
    /// and exits 1 when the payload is invalid; exits 2 when the input cannot be read
    /// or is not JSON.
    Check {
        /// JSON file to check, or `-` for stdin.
        file: PathBuf,
        /// Check an update (PATCH) body instead of a create body.
        #[arg(long)]
        update: bool,
    },
}

/// Runs `dreamgate params`.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Defaults => {
            print_json(&serde_json::to_value(dreamgate_model::default_create_payload())?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file, update } => check(&file, update).await,
    }
}

async fn check(file: &PathBuf, update: bool) -> anyhow::Result<ExitCode> {
    let (name, text) = match read_input(file).await {
        Ok(input) => input,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let body: Value = match serde_json::from_str(&text) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("error: {name} is not valid JSON: {e}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let result = if update {
        dreamgate_model::parse_update(&body).map(|params| Value::Object(params.into_iter().collect()))
    } else {
        dreamgate_model::parse_create(&body).and_then(|payload| {
            serde_json::to_value(payload)
                .map_err(|e| vec![dreamgate_model::FieldError::new("body", format!("cannot be written back: {e}"))])
        })
    };
    match result {
        // An update is shown as the body it would be sent as (model_id only when given).
        Ok(params) if update => {
            print_json(&serde_json::json!({ "pipeline": dreamgate_model::PIPELINE, "params": params }))?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(payload) => {
            print_json(&payload)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for error in &errors {
                println!("{error}");
            }
            eprintln!("{name}: {} problem(s)", errors.len());
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// Reads `file` (or stdin for `-`), returning a display name and the text.
async fn read_input(file: &PathBuf) -> anyhow::Result<(String, String)> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        tokio::io::stdin().read_to_string(&mut text).await.context("cannot read stdin")?;
        return Ok(("stdin".into(), text));
    }
    let name = file.display().to_string();
    let text = tokio::fs::read_to_string(file).await.with_context(|| format!("cannot read {name}"))?;
    Ok((name, text))
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

//! `dreamgate params` through the real binary.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

fn dreamgate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dreamgate"))
        .args(args)
        .env("DREAMGATE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dreamgate");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(pipe);
    child.wait_with_output().expect("wait for dreamgate")
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dreamgate-params-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn defaults_prints_the_default_create_payload() {
    let out = dreamgate(&["params", "defaults"], None);
    assert!(out.status.success(), "{out:?}");
    let printed = stdout_json(&out);
    assert_eq!(printed, serde_json::to_value(dreamgate_model::default_create_payload()).unwrap());
    assert_eq!(printed["params"]["seed"], 42);
    assert_eq!(printed["params"]["controlnets"].as_array().unwrap().len(), 5);
    // pretty-printed
    assert!(String::from_utf8_lossy(&out.stdout).contains("\n  \"params\": {"));
}

#[test]
fn check_valid_legacy_file_prints_the_normalised_payload() {
    let path = temp_file(
        "valid.json",
        r#"{"pipeline_id": "pip_SD15", "pipeline_params": {"prompt": "a fox", "width": 768, "future": [1]}}"#,
    );
    let out = dreamgate(&["params", "check", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout_json(&out),
        json!({"pipeline": "streamdiffusion",
               "params": {"model_id": "Lykon/dreamshaper-8", "prompt": "a fox", "width": 768, "future": [1]}})
    );
}

#[test]
fn check_invalid_file_lists_every_field_and_exits_1() {
    let path = temp_file(
        "invalid.json",
        r#"{"pipeline": "streamdiffusion", "params": {"model_id": "stabilityai/sd-turbo", "width": 500,
            "num_inference_steps": 0, "controlnets": [{"model_id": "xinsir/controlnet-canny-sdxl-1.0"}], "seed": "x"}}"#,
    );
    let out = dreamgate(&["params", "check", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    for field in ["params.width", "params.num_inference_steps", "params.controlnets[0].model_id", "params.seed"] {
        assert!(lines.iter().any(|l| l.starts_with(&format!("{field}: "))), "{field} missing in {stdout}");
    }
}

#[test]
fn check_reads_stdin() {
    let body = serde_json::to_string(&dreamgate_model::default_create_payload()).unwrap();
    let out = dreamgate(&["params", "check", "-"], Some(&body));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout_json(&out)["params"]["model_id"], "stabilityai/sd-turbo");

    let out = dreamgate(
        &["params", "check", "-"],
        Some(r#"{"pipeline": "other", "params": {"model_id": "stabilityai/sd-turbo"}}"#),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("pipeline: "));
}

#[test]
fn check_update_accepts_a_flat_object() {
    let out = dreamgate(&["params", "check", "--update", "-"], Some(r#"{"prompt": "male neon", "delta": 0.5}"#));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout_json(&out),
        json!({"pipeline": "streamdiffusion", "params": {"prompt": "male neon", "delta": 0.5}})
    );
    // the same body is not a valid create payload
    let out = dreamgate(&["params", "check", "-"], Some(r#"{"prompt": "male neon"}"#));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn unreadable_file_or_bad_json_is_a_clear_error() {
    let out = dreamgate(&["params", "check", "/nonexistent/dreamgate/payload.json"], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read /nonexistent/dreamgate/payload.json"), "{stderr}");

    let path = temp_file("broken.json", "{\"pipeline\": ");
    let out = dreamgate(&["params", "check", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not valid JSON"), "{stderr}");
    assert!(out.stdout.is_empty());
}

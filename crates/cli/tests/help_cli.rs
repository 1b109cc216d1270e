//! `dreamgate --help` lists every subcommand, and an unknown one is a usage error.

use std::process::Command;

fn dreamgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dreamgate")).args(args).output().expect("run dreamgate")
}

#[test]
fn help_lists_every_subcommand() {
    let out = dreamgate(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["serve", "engine", "params", "stream", "ingest", "watch", "bench"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "`{sub}` missing from --help:\n{text}"
        );
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = dreamgate(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}

#[test]
fn engine_and_serve_take_max_ingest_and_the_engine_lists_the_stall_and_load_knobs() {
    for sub in ["engine", "serve"] {
        let out = dreamgate(&[sub, "--help"]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("--max-ingest <N>"), "`{sub} --help`:\n{text}");
    }
    let text = String::from_utf8_lossy(&dreamgate(&["engine", "--help"]).stdout).into_owned();
    for knob in ["stall=3s", "load=5s"] {
        assert!(text.contains(knob), "{knob} missing:\n{text}");
    }
    let out = dreamgate(&["engine", "--max-ingest", "many"]);
    assert_eq!(out.status.code(), Some(2), "a bad --max-ingest is a usage error");
}

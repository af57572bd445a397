//! Property tests of the parsers that read untrusted input: unit files, durations and sizes,
//! control requests and sd_notify messages. They stand in for the fuzz targets of `fuzz/`
//! (which need a nightly toolchain) and run with every `cargo test`, a few hundred cases each,
//! in well under a few seconds. Each crash they find becomes a regression test.

use proptest::prelude::*;
use std::path::Path;
use std::time::Duration;
use svc::control::protocol::parse_request;
use svc::unit::duration::{format_duration, parse_duration, parse_size};

/// Few cases, no files written: a quick check in every run, not a fuzzing campaign.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A line of a unit file: a known or nearly known key (top level or dotted) and a value of any
/// TOML type, or a table header, or any text at all.
fn unit_line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(svc::unit::keys::top_level().to_vec()).prop_map(str::to_string),
        prop::sample::select(
            svc::unit::keys::KEYS
                .iter()
                .map(|def| def.name)
                .collect::<Vec<_>>()
        )
        .prop_map(str::to_string),
        prop::sample::select(vec!["ExecStart", "Service"]).prop_map(str::to_string),
        "[a-zA-Z_][a-zA-Z0-9_.-]{0,12}",
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~]{0,20}".prop_map(|s| format!("{s:?}")),
        "[0-9]{1,4}(\\.[0-9]{0,3})?(d|h|m|s|ms|K|M|G)?".prop_map(|s| format!("{s:?}")),
        prop::collection::vec("[ -~]{0,8}", 0..4).prop_map(|v| format!("{v:?}")),
        Just("{ A = \"1\", 2 = 3 }".to_string()),
    ];
    prop_oneof![
        4 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => prop::sample::select(vec!["[restart]", "[stop]", "[ready]", "[health]", "[memory]", "[log]", "[env]", "[[x]]"])
            .prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_unit_file_gives_a_unit_or_located_errors_never_a_panic(
        lines in prop::collection::vec(unit_line(), 0..12)
    ) {
        let text = lines.join("\n");
        // An env_file is read from disk: that is the files' business, not the parser's.
        prop_assume!(!text.contains("env_file"));
        if let Err(errors) = svc::unit::validate::validate(Path::new("app.toml"), &text) {
            prop_assert!(!errors.errors.is_empty());
            let last_line = text.split('\n').count();
            for error in &errors.errors {
                prop_assert!(error.line <= last_line, "{} past line {}", error, last_line);
            }
        }
    }

    #[test]
    fn any_text_is_a_duration_or_refused_never_a_panic(text in any::<String>()) {
        let _ = parse_duration(&text);
        let _ = parse_size(&text);
    }

    #[test]
    fn duration_like_text_parses_and_formats_back(
        text in "[0-9]{1,22}(\\.[0-9]{0,11})?(d|h|m|s|ms)([0-9]{1,3}(\\.[0-9]{1,3})?(s|ms))?"
    ) {
        if let Ok(duration) = parse_duration(&text) {
            let whole_ms = Duration::from_millis(duration.as_millis() as u64);
            prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(whole_ms));
        }
    }

    #[test]
    fn durations_round_trip(ms in any::<u64>()) {
        let duration = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
    }

    #[test]
    fn the_request_decoder_never_panics_and_accepts_only_what_round_trips(line in any::<String>()) {
        if let Ok(request) = parse_request(&line) {
            let encoded = serde_json::to_string(&request).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parse_request(&encoded), Ok(request));
        }
    }

    #[test]
    fn the_request_decoder_rejects_what_is_not_a_versioned_request(
        cmd in "[a-z]{0,8}",
        v in any::<u64>(),
        names in prop::collection::vec("[ -~]{0,6}", 0..3),
    ) {
        let without_version = serde_json::json!({ "cmd": cmd, "names": names }).to_string();
        prop_assert!(parse_request(&without_version).is_err());
        let line = serde_json::json!({ "v": v, "cmd": cmd, "names": names }).to_string();
        let known = ["status", "list", "start", "stop", "restart", "wait", "reload", "shutdown", "logs"];
        if v != 1 || !known.contains(&cmd.as_str()) {
            prop_assert!(parse_request(&line).is_err(), "{} accepted", line);
        }
        // Not JSON at all: a truncated request.
        let cut = &line[..line.len() - 1];
        prop_assert!(parse_request(cut).is_err(), "{} accepted", cut);
    }

    #[test]
    fn a_notify_message_splits_into_pairs_never_a_panic(text in any::<String>()) {
        for (key, value) in svc::daemon::parse_notify(&text) {
            prop_assert!(!key.contains('\n') && !value.contains('\n'));
        }
    }
}

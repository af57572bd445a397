//! `svc status`'s quick way agrees with the parser of every command: for any words it takes,
//! it does what `Sub::Status` does, and it leaves the rest to the parser.

use super::{Args, Sub, quick_status_words};
use clap::Parser;
use proptest::prelude::*;
use std::ffi::OsString;
use std::path::PathBuf;

fn argv(words: &[&str]) -> Vec<OsString> {
    std::iter::once("svc")
        .chain(words.iter().copied())
        .map(OsString::from)
        .collect()
}

/// What the parser makes of `argv`, when it is a plain `status` (no flag but `--socket`).
fn parsed(argv: &[OsString]) -> Option<(Option<PathBuf>, Vec<String>)> {
    let args = Args::try_parse_from(argv).ok()?;
    match args.command {
        Sub::Status {
            names,
            json: false,
            check: false,
        } if args.timeout.is_none() && !args.quiet => Some((args.socket, names)),
        _ => None,
    }
}

#[test]
fn the_quick_way_takes_a_plain_status_with_or_without_a_socket() {
    let cases: [(&[&str], Option<&str>, &[&str]); 5] = [
        (&["status"], None, &[]),
        (&["status", "chat", "nginx"], None, &["chat", "nginx"]),
        (&["--socket", "/s", "status", "chat"], Some("/s"), &["chat"]),
        (&["--socket=/s", "status"], Some("/s"), &[]),
        (&["status", "help"], None, &["help"]),
    ];
    for (words, socket, names) in cases {
        let want = (
            socket.map(PathBuf::from),
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        );
        assert_eq!(
            quick_status_words(&argv(words)),
            Some(want.clone()),
            "{words:?}"
        );
        assert_eq!(parsed(&argv(words)), Some(want), "{words:?}");
    }
}

#[test]
fn the_quick_way_leaves_flags_other_commands_and_odd_words_to_the_parser() {
    let cases: [&[&str]; 11] = [
        &[],
        &["list"],
        &["status", "--json"],
        &["status", "chat", "--check"],
        &["-q", "status"],
        &["--timeout", "1s", "status"],
        &["status", "--", "chat"],
        &["--socket", "/a", "--socket", "/b", "status"],
        &["--socket"],
        &["--socket=", "status"],
        &["--socket", "-q", "status"],
    ];
    for words in cases {
        assert_eq!(quick_status_words(&argv(words)), None, "{words:?}");
    }
}

#[cfg(unix)]
#[test]
fn a_name_that_is_not_utf8_goes_to_the_parser() {
    use std::os::unix::ffi::OsStringExt;
    let mut argv = argv(&["status"]);
    argv.push(OsString::from_vec(vec![0xff, b'x']));
    assert_eq!(quick_status_words(&argv), None);
}

proptest! {
    // Many cases: a disagreement may hide in one order of a few words (`--socket -q status`
    // was found by the 256 default cases only now and then).
    #![proptest_config(ProptestConfig::with_cases(4096))]
    /// Whatever words it takes, the parser reads the same socket and names from them.
    #[test]
    fn whatever_the_quick_way_takes_the_parser_reads_alike(
        picks in proptest::collection::vec(0usize..17, 0..6)
    ) {
        const WORDS: [&str; 17] = [
            "status", "--socket", "--socket=/s", "/s", "chat", "-q", "--json", "--check", "--",
            "list", "--timeout", "1s", "nginx", "-x", "help", "--socket=", "",
        ];
        let words: Vec<&str> = picks.iter().map(|&i| WORDS[i]).collect();
        let argv = argv(&words);
        if let Some(quick) = quick_status_words(&argv) {
            prop_assert_eq!(Some(quick), parsed(&argv), "{:?}", words);
        }
    }
}

//! The man pages stay in step with the code: every unit key the parser accepts is in
//! `man/svc.unit.5`, every `svc` command and option in `man/svc.1`, every `svcd` option and
//! `svcd.toml` key in `man/svcd.8`. The lists come from the code itself (the parser's key arrays,
//! clap's definitions, svcd's `--help`, serde's list of known fields), so a new key or option
//! without its documentation fails here.

use clap::CommandFactory;
use std::path::Path;
use std::process::Command;

fn page(name: &str) -> Page {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Page::parse(&text)
}

/// One man page, cut into its `.TP` items: each item's tag line and body, and the section
/// (`.SH`) and subsection (`.SS`) it is in. Text is plain: font escapes removed, `\-` as `-`.
struct Page {
    items: Vec<Item>,
    /// Each section (`.SH`) with its whole text, plain.
    sections: Vec<(String, String)>,
}

#[derive(Debug)]
struct Item {
    section: String,
    subsection: String,
    tag: String,
    body: String,
}

impl Page {
    fn parse(text: &str) -> Page {
        let mut items = Vec::new();
        let (mut section, mut subsection) = (String::new(), String::new());
        let mut current: Option<Item> = None;
        let mut sections: Vec<(String, String)> = Vec::new();
        let mut tag_next = false;
        for line in text.lines() {
            if let Some((_, text)) = sections.last_mut() {
                text.push_str(&plain(line));
                text.push('\n');
            }
            if let Some(rest) = line.strip_prefix(".SH ") {
                items.extend(current.take());
                section = plain(rest).trim_matches('"').to_string();
                subsection.clear();
                sections.push((section.clone(), String::new()));
            } else if let Some(rest) = line.strip_prefix(".SS ") {
                items.extend(current.take());
                subsection = plain(rest).trim_matches('"').to_string();
            } else if line == ".TP" || line.starts_with(".TP ") {
                items.extend(current.take());
                tag_next = true;
            } else if tag_next {
                tag_next = false;
                current = Some(Item {
                    section: section.clone(),
                    subsection: subsection.clone(),
                    tag: plain(line),
                    body: String::new(),
                });
            } else if let Some(item) = current.as_mut() {
                item.body.push_str(&plain(line));
                item.body.push('\n');
            }
        }
        items.extend(current);
        Page { items, sections }
    }

    fn items_in(&self, section: &str) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(move |i| i.section == section)
    }
}

/// A roff line as text: requests (`.B`, `.BR`, `.BI`, ...) dropped, quotes and font escapes
/// removed, `\-` as `-`.
fn plain(line: &str) -> String {
    let line = match line.strip_prefix('.') {
        Some(rest) => rest.split_once(' ').map_or("", |(_, args)| args),
        None => line,
    };
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                // \fB, \fI, \fR, \fP
                Some('f') => {
                    chars.next();
                }
                Some('-') => out.push('-'),
                // \(xx: a special character, kept as a space.
                Some('(') => {
                    chars.next();
                    chars.next();
                    out.push(' ');
                }
                Some(other) => out.push(other),
                None => {}
            },
            '"' => {}
            c => out.push(c),
        }
    }
    out
}

/// `word` occurs in `text` on its own: not as part of a longer key or option.
fn has_word(text: &str, word: &str) -> bool {
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_part) && !after.is_some_and(is_part)
    })
}

#[test]
fn plain_and_has_word_read_roff() {
    assert_eq!(
        plain(r#".BR max_delay " (duration)""#),
        "max_delay  (duration)"
    );
    assert_eq!(plain(r"\fB\-\-no\-wait\fR"), "--no-wait");
    assert!(has_word("a --json b", "--json"));
    assert!(!has_word("a --jsonl b", "--json"));
    assert!(!has_word("max_delay", "delay"));
    assert!(has_word("tcp, http, exec", "http"));
}

/// Every key of the unit file parser (its one definition, `src/unit/keys.rs`) is the tag of an
/// item of its table's subsection of KEYS in svc.unit(5).
#[test]
fn every_unit_key_is_in_svc_unit_5() {
    let page = page("svc.unit.5");
    let mut tables: Vec<(String, Vec<&str>)> = Vec::new();
    for def in svc::unit::keys::KEYS {
        let table = match def.table() {
            Some(table) => format!("[{table}]"),
            None => "Top level".to_string(),
        };
        match tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, keys)) => keys.push(def.leaf()),
            None => tables.push((table, vec![def.leaf()])),
        }
    }
    // A table is itself a top-level key, documented by its subsection.
    let top: Vec<&str> = svc::unit::keys::top_level().to_vec();
    match tables.iter_mut().find(|(t, _)| t == "Top level") {
        Some((_, keys)) => *keys = top,
        None => tables.push(("Top level".to_string(), top)),
    }
    let mut missing = Vec::new();
    for (table, keys) in &tables {
        let table = table.as_str();
        let tags: Vec<&str> = page
            .items_in("KEYS")
            .filter(|i| i.subsection == table)
            .map(|i| i.tag.as_str())
            .collect();
        // A table is itself a top-level key, documented by its subsection.
        let subsections: Vec<&str> = page.items.iter().map(|i| i.subsection.as_str()).collect();
        for key in keys {
            let as_table =
                table == "Top level" && subsections.contains(&format!("[{key}]").as_str());
            if !as_table && !tags.iter().any(|t| has_word(t, key)) {
                missing.push(format!("{table} {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "unit keys the parser accepts but man/svc.unit.5 does not describe (an item of KEYS, \
         subsection of the table): {missing:?}"
    );
}

/// Every `svc` subcommand (clap's definition) is an item of COMMANDS in svc(1), and each of its
/// options is named in that item; every global option is an item of OPTIONS.
#[test]
fn every_svc_command_and_option_is_in_svc_1() {
    let page = page("svc.1");
    let command = svc::cli::Args::command();
    let mut missing = Vec::new();
    let names = |arg: &clap::Arg| -> Vec<String> {
        let mut names: Vec<String> = arg
            .get_long()
            .map(|l| format!("--{l}"))
            .into_iter()
            .collect();
        names.extend(arg.get_short().map(|s| format!("-{s}")));
        names
    };
    let options = |command: &clap::Command| -> Vec<Vec<String>> {
        command
            .get_arguments()
            .filter(|a| !a.is_positional() && !a.is_hide_set() && !a.is_global_set())
            .map(names)
            .filter(|n| !n.is_empty() && !["--help", "--version"].contains(&n[0].as_str()))
            .collect()
    };
    for global in options(&command) {
        if !page
            .items_in("OPTIONS")
            .any(|i| global.iter().any(|n| has_word(&i.tag, n)))
        {
            missing.push(format!("option {}", global[0]));
        }
    }
    for global in command
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(names)
    {
        if !page
            .items_in("OPTIONS")
            .any(|i| global.iter().any(|n| has_word(&i.tag, n)))
        {
            missing.push(format!("option {}", global[0]));
        }
    }
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        if name == "help" {
            continue;
        }
        let items: Vec<&Item> = page
            .items_in("COMMANDS")
            .filter(|i| has_word(&i.tag, name))
            .collect();
        if items.is_empty() {
            missing.push(format!("command {name}"));
            continue;
        }
        for option in options(sub) {
            let named = items.iter().any(|i| {
                option
                    .iter()
                    .any(|n| has_word(&i.tag, n) || has_word(&i.body, n))
            });
            if !named {
                missing.push(format!("{name} {}", option[0]));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "svc commands and options that man/svc.1 does not describe: {missing:?}"
    );
}

/// Every option of `svcd --help` is an item of OPTIONS in svcd(8).
#[test]
fn every_svcd_option_is_in_svcd_8() {
    let page = page("svcd.8");
    let out = Command::new(env!("CARGO_BIN_EXE_svcd"))
        .arg("--help")
        .output()
        .expect("run svcd --help");
    assert!(out.status.success(), "svcd --help failed");
    let help = String::from_utf8_lossy(&out.stdout);
    let mut options: Vec<String> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.to_string())
        .filter(|w| w != "--help" && w != "--version")
        .collect();
    options.dedup();
    assert!(
        options.contains(&"--units".to_string()),
        "svcd --help lists --units: {help}"
    );
    let missing: Vec<&String> = options
        .iter()
        .filter(|o| !page.items_in("OPTIONS").any(|i| has_word(&i.tag, o)))
        .collect();
    assert!(
        missing.is_empty(),
        "svcd options that man/svcd.8 does not describe under OPTIONS: {missing:?}"
    );
}

/// The keys `svcd.toml` accepts, as serde names them when refusing an unknown one (`expected
/// one of ...`), for the top level (`table` empty) or a table.
fn config_keys(table: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("svcd.toml");
    let text = if table.is_empty() {
        "no_such_key_here = 1\n".to_string()
    } else {
        format!("[{table}]\nno_such_key_here = 1\n")
    };
    std::fs::write(&path, text).expect("write svcd.toml");
    let error = match svc::config::load(&path, true) {
        Ok(_) => panic!("svcd.toml accepted an unknown key in [{table}]"),
        Err(e) => e.to_string(),
    };
    let list = error
        .split_once("expected one of ")
        .or_else(|| error.split_once("expected "))
        .map(|(_, list)| list)
        .unwrap_or_else(|| panic!("no list of known keys in: {error}"));
    list.split(',')
        .filter_map(|k| k.split('`').nth(1))
        .map(str::to_string)
        .collect()
}

/// Every key of `svcd.toml` (from the config's own deserializer) is in svcd(8): a top-level key
/// by name (a table as `[name]`), a table's key as the tag of an item in a section that names
/// the table, or in the text of an item that names the table (`--config`: `[log]` ...).
#[test]
fn every_svcd_toml_key_is_in_svcd_8() {
    let page = page("svcd.8");
    let top = config_keys("");
    assert!(
        top.contains(&"admin_group".to_string()),
        "top keys: {top:?}"
    );
    let mut missing = Vec::new();
    for key in &top {
        let table = format!("[{key}]");
        let named = page
            .sections
            .iter()
            .any(|(_, text)| has_word(text, key) || text.contains(&table));
        if !named {
            missing.push(key.clone());
        }
    }
    for table in ["memory", "log"] {
        assert!(top.contains(&table.to_string()), "top keys: {top:?}");
        let name = format!("[{table}]");
        for key in config_keys(table) {
            let item = page.items.iter().any(|i| {
                has_word(&i.tag, &key)
                    && page
                        .sections
                        .iter()
                        .any(|(s, text)| *s == i.section && text.contains(&name))
            });
            let in_text = page
                .items
                .iter()
                .any(|i| i.body.contains(&name) && has_word(&i.body, &key));
            if !(item || in_text) {
                missing.push(format!("{table}.{key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "svcd.toml keys that man/svcd.8 does not describe: {missing:?}"
    );
}

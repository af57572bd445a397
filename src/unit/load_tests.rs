//! Loading directories and the paths of `svc check`.

use super::*;
use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const GOOD: &str = "exec = [\"sleep\", \"60\"]\n";

#[test]
fn load_dirs_sorts_and_reports_broken_and_duplicates() {
    let first = TempDir::new().unwrap();
    let second = TempDir::new().unwrap();
    fs::write(first.path().join("web.toml"), GOOD).unwrap();
    fs::write(first.path().join("api.toml"), GOOD).unwrap();
    fs::write(first.path().join("bad.toml"), "exec = 1\n").unwrap();
    fs::write(first.path().join("notes.txt"), "not a unit").unwrap();
    fs::create_dir(first.path().join("dir.toml")).unwrap();
    fs::write(second.path().join("web.toml"), GOOD).unwrap();
    fs::write(second.path().join("db.toml"), GOOD).unwrap();

    let dirs = [first.path().to_path_buf(), second.path().to_path_buf()];
    let loaded = load_dirs(&dirs).unwrap();
    let names: Vec<&str> = loaded.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["api", "db", "web"]);
    assert_eq!(loaded.units[2].path, first.path().join("web.toml"));
    let broken: Vec<&str> = loaded.broken.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(broken, ["bad", "web"]);
    let duplicate = &loaded.broken[1].errors[0];
    assert_eq!(duplicate.path, second.path().join("web.toml"));
    assert_eq!((duplicate.line, duplicate.column), (0, 0));
    assert!(duplicate.message.contains("duplicate unit `web`, also in"));
    assert!(
        duplicate
            .message
            .contains(&first.path().join("web.toml").display().to_string())
    );
}

#[test]
fn load_dirs_names_a_missing_directory() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nope");
    let error = load_dirs(std::slice::from_ref(&missing)).unwrap_err();
    assert!(error.to_string().contains(&missing.display().to_string()));
}

#[test]
fn unreadable_file_is_broken_at_line_zero() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("bin.toml");
    fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    let errors = load_file(&path).unwrap_err();
    assert_eq!(errors.name, "bin");
    assert_eq!((errors.errors[0].line, errors.errors[0].column), (0, 0));
    assert!(
        errors.errors[0]
            .message
            .contains("cannot read the unit file")
    );
}

#[test]
fn check_paths_takes_files_directories_and_reports_missing() {
    let dir = TempDir::new().unwrap();
    let units = dir.path().join("units");
    fs::create_dir(&units).unwrap();
    fs::write(units.join("b.toml"), GOOD).unwrap();
    fs::write(units.join("a.toml"), "exec = \"\"\n").unwrap();
    let single = dir.path().join("one.toml");
    fs::write(&single, GOOD).unwrap();
    let missing = dir.path().join("missing.toml");

    let results = check_paths(&[units.clone(), single.clone(), missing.clone()]);
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().unwrap_err().path, units.join("a.toml"));
    assert_eq!(results[1].as_ref().unwrap().name, "b");
    assert_eq!(results[2].as_ref().unwrap().path, single);
    let missing_errors = results[3].as_ref().unwrap_err();
    assert_eq!(missing_errors.path, missing);
    assert_eq!(missing_errors.name, "missing");
    assert!(
        missing_errors.errors[0]
            .message
            .contains("give a unit file")
    );
}

#[test]
fn wants_names_must_exist_and_must_not_close_a_cycle() {
    let dir = TempDir::new().unwrap();
    let units = dir.path();
    fs::write(units.join("chat.toml"), GOOD).unwrap();
    fs::write(
        units.join("proxy.toml"),
        "exec = \"true\"\nwants = [\"chat\"]\n",
    )
    .unwrap();
    fs::write(
        units.join("lost.toml"),
        "exec = \"true\"\nwants = [\"nowhere\"]\n",
    )
    .unwrap();
    fs::write(units.join("a.toml"), "exec = \"true\"\nwants = [\"b\"]\n").unwrap();
    fs::write(units.join("b.toml"), "exec = \"true\"\nafter = [\"a\"]\n").unwrap();
    let loaded = load_dirs(&[units.to_path_buf()]).unwrap();
    let names: Vec<&str> = loaded.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["chat", "proxy"]);
    assert_eq!(loaded.units[1].wants, ["chat"]);
    let broken: Vec<(&str, &str)> = loaded
        .broken
        .iter()
        .map(|b| (b.name.as_str(), b.errors[0].message.as_str()))
        .collect();
    assert_eq!(broken.len(), 3, "{broken:?}");
    assert!(
        broken[0]
            .1
            .contains("dependency cycle: a wants b is after a"),
        "{broken:?}"
    );
    assert_eq!(broken[0].0, "a");
    assert_eq!(broken[1].0, "b");
    assert!(
        broken[2]
            .1
            .contains("`lost` wants `nowhere`, but there is no unit"),
        "{broken:?}"
    );
    assert_eq!(loaded.broken[2].errors[0].key.as_deref(), Some("wants"));
}

#[test]
fn the_shipped_units_are_valid() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["units", "contrib/docker/units"] {
        let mut paths: Vec<PathBuf> = fs::read_dir(repo.join(dir))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty(), "no units in {dir}");
        for result in check_paths(&paths) {
            if let Err(errors) = result {
                panic!("{errors}");
            }
        }
    }
}

/// The `.nf` … `.fi` blocks of svc.unit(5)'s EXAMPLE section, roff escapes undone.
fn man_examples(man: &str) -> Vec<String> {
    let section = man
        .split_once("\n.SH EXAMPLE\n")
        .and_then(|(_, rest)| rest.split("\n.SH ").next())
        .unwrap_or_default();
    section
        .split("\n.nf\n")
        .skip(1)
        .filter_map(|block| block.split_once("\n.fi\n"))
        .map(|(text, _)| text.replace("\\-", "-").replace("\\(dq", "\"") + "\n")
        .collect()
}

#[test]
fn the_man_page_examples_are_valid() {
    let examples = man_examples(include_str!("../../man/svc.unit.5"));
    assert_eq!(examples.len(), 2, "{examples:#?}");
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("chat.env"), "").unwrap();
    for text in examples {
        if let Err(errors) = super::tests::load_in(dir.path(), "chat.toml", &text) {
            panic!("{errors}\n{text}");
        }
    }
}

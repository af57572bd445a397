//! Reading unit files and directories.

use super::template::{SAMPLE_INSTANCE, is_template};
use super::validate::{name_of, validate, validate_instance};
use super::{Unit, UnitError, UnitErrors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A units directory that cannot be listed. Each message is whole (directory and cause once):
/// callers print it as it is, without a prefix of their own.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory does not exist: say what to create or pass.
    #[error(
        "no units directory {}: create it with unit files (man svc.unit) or pass --units DIR",
        dir.display()
    )]
    Missing { dir: PathBuf },
    #[error("cannot read the units directory {}: {source}", dir.display())]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// What a set of units directories holds: the valid units and the broken ones.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Sorted by name.
    pub units: Vec<Unit>,
    /// Sorted by name. A broken unit is still a unit: svcd lists it with its errors.
    pub broken: Vec<UnitErrors>,
}

/// Reads and validates one `NAME.toml`. Relative `workdir` / `env_file` resolve against
/// `path`'s directory. A template (`NAME@.toml`) is validated as each instance it lists, or as
/// the instance `sample` when it lists none; the result is the first instance's unit (or the
/// first errors), named as the template.
pub fn load_file(path: &Path) -> Result<Unit, UnitErrors> {
    let text = read(path)?;
    if !is_template(&name_of(path)) {
        return validate(path, &text);
    }
    let (sample, mut instances) = load_instances(path, &text)?;
    let mut first = if instances.is_empty() {
        sample
    } else {
        instances.remove(0)?
    };
    first.name = name_of(path);
    Ok(first)
}

fn read(path: &Path) -> Result<String, UnitErrors> {
    std::fs::read_to_string(path).map_err(|error| {
        whole_file(
            path,
            format!(
                "cannot read the unit file: {error}; check that it exists, is UTF-8 text, and that svc may read it"
            ),
        )
    })
}

/// The template validated as the sample instance, and the units it makes: one per name in its
/// `instances`; or the template's own errors (found with the sample) when it is broken as a
/// whole.
type Instances = (Unit, Vec<Result<Unit, UnitErrors>>);

fn load_instances(path: &Path, text: &str) -> Result<Instances, UnitErrors> {
    let sample = validate_instance(path, text, Some(SAMPLE_INSTANCE)).map_err(|mut errors| {
        // The errors of the file as a whole name the template, not the sample.
        errors.name = name_of(path);
        errors
    })?;
    let instances = sample
        .instances
        .iter()
        .map(|instance| {
            validate_instance(path, text, Some(instance)).map(|mut unit| {
                // The list is the template's: adding an instance changes no other one (a
                // reload compares units to restart those whose settings changed).
                unit.instances.clear();
                unit
            })
        })
        .collect();
    Ok((sample, instances))
}

/// Reads every `*.toml` in each directory (not recursive; other files ignored). A name found in
/// two directories: the first wins and the second is broken ("duplicate unit, also in ...").
/// A directory that cannot be read is an `Err` naming it.
pub fn load_dirs(dirs: &[PathBuf]) -> Result<Loaded, LoadError> {
    // Name → the file that defined it first, valid or not.
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut loaded = Loaded::default();
    for dir in dirs {
        for path in unit_files(dir)? {
            let name = name_of(&path);
            if let Some(first) = seen.get(&name) {
                let message = format!(
                    "duplicate unit `{name}`, also in {}; that one is used, rename or remove this one",
                    first.display()
                );
                loaded.broken.push(whole_file(&path, message));
                continue;
            }
            seen.insert(name.clone(), path.clone());
            if !is_template(&name) {
                match load_file(&path) {
                    Ok(unit) => loaded.units.push(unit),
                    Err(errors) => loaded.broken.push(errors),
                }
                continue;
            }
            // A template is no unit: its listed instances are.
            let instances = read(&path).and_then(|text| load_instances(&path, &text));
            let instances = match instances {
                Ok((_, instances)) => instances,
                Err(errors) => {
                    loaded.broken.push(errors);
                    continue;
                }
            };
            for instance in instances {
                let instance_name = match &instance {
                    Ok(unit) => unit.name.clone(),
                    Err(errors) => errors.name.clone(),
                };
                // A unit of that name in an earlier directory wins, as for two files.
                if let Some(first) = seen.get(&instance_name) {
                    let message = format!(
                        "duplicate unit `{instance_name}`, also in {}; that one is used, remove \
                         the instance from `instances` or the other file",
                        first.display()
                    );
                    loaded.broken.push(UnitErrors {
                        name: instance_name,
                        ..whole_file(&path, message)
                    });
                    continue;
                }
                seen.insert(instance_name, path.clone());
                match instance {
                    Ok(unit) => loaded.units.push(unit),
                    Err(errors) => loaded.broken.push(errors),
                }
            }
        }
    }
    loaded.units.sort_by(|a, b| a.name.cmp(&b.name));
    super::graph::check(&mut loaded.units, &mut loaded.broken, |_, _| false);
    // Stable: a duplicate stays after the unit it duplicates when that one is broken too.
    loaded.broken.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(loaded)
}

/// For `svc check [PATH...]`: each path is a unit file or a directory of them (its `*.toml`, not
/// recursive), one result per file in the order given (a directory's files sorted). A path that
/// cannot be read gives an error entry for it. Duplicate names are not looked for: checking two
/// versions of one unit side by side is a fair use.
///
/// The dependencies are checked over the whole set: a name that no given unit has (nor a
/// `NAME.toml` beside the unit's file) and cycles are errors.
pub fn check_paths(paths: &[PathBuf]) -> Vec<Result<Unit, UnitErrors>> {
    let mut results = check_files(paths);
    let mut units: Vec<Unit> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .cloned()
        .collect();
    let mut broken: Vec<UnitErrors> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .cloned()
        .collect();
    let before = broken.len();
    super::graph::check(&mut units, &mut broken, |unit, name| {
        unit.path
            .parent()
            .is_some_and(|dir| dir.join(format!("{name}.toml")).is_file())
    });
    if broken.len() > before {
        for result in &mut results {
            let Ok(unit) = result else { continue };
            if !units.iter().any(|u| u.path == unit.path)
                && let Some(errors) = broken.iter().find(|b| b.path == unit.path)
            {
                *result = Err(errors.clone());
            }
        }
    }
    results
}

fn check_files(paths: &[PathBuf]) -> Vec<Result<Unit, UnitErrors>> {
    let mut results = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => match unit_files(path) {
                Ok(files) => results.extend(files.iter().map(|file| load_file(file))),
                // The error's message names the directory; the entry's path says it already.
                Err(LoadError::ReadDir { source, .. }) => results.push(Err(whole_file(
                    path,
                    format!("cannot read the units directory: {source}"),
                ))),
                Err(error) => results.push(Err(whole_file(path, error.to_string()))),
            },
            Ok(_) => results.push(load_file(path)),
            Err(error) => results.push(Err(whole_file(
                path,
                format!("{error}; give a unit file (NAME.toml) or a units directory"),
            ))),
        }
    }
    results
}

/// The `*.toml` files of `dir` that are files (or links to files), sorted by file name.
fn unit_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let context = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => LoadError::Missing {
            dir: dir.to_path_buf(),
        },
        _ => LoadError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        },
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(context)? {
        let path = entry.map_err(context)?.path();
        // A dangling link or a directory named `x.toml` is not a unit file.
        if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// A broken unit with one error about the whole file.
fn whole_file(path: &Path, message: String) -> UnitErrors {
    UnitErrors {
        name: name_of(path),
        path: path.to_path_buf(),
        errors: vec![UnitError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            key: None,
            message,
        }],
    }
}

//! The dependency graph of a set of units (`requires`, `after`, `wants`): names that no unit has, and
//! cycles. A unit at fault becomes broken with an error naming the units involved; the others
//! go on (and a unit that depends on a broken one is broken too, as it could never start).

use super::{Unit, UnitError, UnitErrors};
use std::collections::{BTreeMap, BTreeSet};

/// Moves the units of `units` whose dependencies cannot work to `broken`.
///
/// `known_elsewhere(unit, name)` tells whether a name that is not in `units` nor in `broken` is
/// fine anyway (for `svc check` of one file: a sibling unit file that was not given).
pub fn check(
    units: &mut Vec<Unit>,
    broken: &mut Vec<UnitErrors>,
    known_elsewhere: impl Fn(&Unit, &str) -> bool,
) {
    loop {
        let valid: BTreeSet<&str> = units.iter().map(|u| u.name.as_str()).collect();
        let invalid: BTreeSet<&str> = broken.iter().map(|b| b.name.as_str()).collect();
        let mut faults: BTreeMap<String, (&'static str, String)> = BTreeMap::new();
        for unit in units.iter() {
            for (key, dep) in deps(unit) {
                if valid.contains(dep) {
                    continue;
                }
                let message = if invalid.contains(dep) {
                    format!(
                        "`{}` {} `{dep}`, which is broken (see its errors); fix `{dep}` first",
                        unit.name,
                        verb(key)
                    )
                } else if known_elsewhere(unit, dep) {
                    continue;
                } else {
                    format!(
                        "`{}` {} `{dep}`, but there is no unit named `{dep}`; add {dep}.toml or \
                         fix the name",
                        unit.name,
                        verb(key)
                    )
                };
                faults.entry(unit.name.clone()).or_insert((key, message));
            }
        }
        if faults.is_empty() {
            faults = cycles(units);
        }
        if faults.is_empty() {
            return;
        }
        let (bad, good): (Vec<Unit>, Vec<Unit>) = std::mem::take(units)
            .into_iter()
            .partition(|u| faults.contains_key(&u.name));
        *units = good;
        for unit in bad {
            let (key, message) = faults.remove(&unit.name).unwrap_or_default();
            broken.push(UnitErrors {
                name: unit.name.clone(),
                path: unit.path.clone(),
                errors: vec![UnitError {
                    path: unit.path.clone(),
                    line: 0,
                    column: 0,
                    key: Some(key.to_string()),
                    message,
                }],
            });
        }
        broken.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

fn deps(unit: &Unit) -> impl Iterator<Item = (&'static str, &str)> {
    let requires = unit.requires.iter().map(|d| ("requires", d.as_str()));
    let after = unit.after.iter().map(|d| ("after", d.as_str()));
    requires.chain(after.chain(unit.wants.iter().map(|d| ("wants", d.as_str()))))
}

fn verb(key: &str) -> &'static str {
    match key {
        "requires" => "requires",
        "wants" => "wants",
        _ => "is after",
    }
}

/// Every unit on a cycle, each with a message that spells the cycle out.
fn cycles(units: &[Unit]) -> BTreeMap<String, (&'static str, String)> {
    let index: BTreeMap<&str, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.name.as_str(), i))
        .collect();
    let edges: Vec<Vec<(usize, &'static str)>> = units
        .iter()
        .map(|u| {
            deps(u)
                .filter_map(|(key, d)| index.get(d).map(|&i| (i, key)))
                .collect()
        })
        .collect();
    let mut faults: BTreeMap<String, (&'static str, String)> = BTreeMap::new();
    for start in 0..units.len() {
        if faults.contains_key(&units[start].name) {
            continue;
        }
        if let Some(path) = path_back(&edges, start) {
            let mut words = units[start].name.clone();
            for (node, key) in &path {
                words.push_str(&format!(" {} {}", verb(key), units[*node].name));
            }
            let message = format!(
                "dependency cycle: {words}; remove one of these `requires`/`after`/`wants` entries"
            );
            let key = path.first().map_or("requires", |(_, key)| key);
            for (node, _) in &path {
                faults.insert(units[*node].name.clone(), (key, message.clone()));
            }
        }
    }
    faults
}

/// A path of edges from `start` back to `start`, if one exists (depth-first, iterative).
fn path_back(
    edges: &[Vec<(usize, &'static str)>],
    start: usize,
) -> Option<Vec<(usize, &'static str)>> {
    let mut seen = vec![false; edges.len()];
    // (node, next edge to try); the path is the stack's edges.
    let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
    let mut path: Vec<(usize, &'static str)> = Vec::new();
    while let Some(&mut (node, ref mut next)) = stack.last_mut() {
        if let Some(&(to, key)) = edges[node].get(*next) {
            *next += 1;
            if to == start {
                path.push((to, key));
                return Some(path);
            }
            if !seen[to] {
                seen[to] = true;
                path.push((to, key));
                stack.push((to, 0));
            }
        } else {
            stack.pop();
            path.pop();
        }
    }
    None
}

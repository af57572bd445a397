//! Stage one: the unit file as written.
//!
//! The TOML is parsed with [`toml::de::DeTable`], which keeps the byte span of every key and
//! value, and sorted into a [`RawUnit`]: each key of [`super::keys::KEYS`], still untyped, with
//! its spans. Keys that are not ours (or not ours *yet*) become [`Issue`]s here, so that stage two
//! ([`super::validate`]) only deals with types and meanings. Nothing stops at the first problem:
//! every issue of the file is collected.
//!
//! A hand-written walk rather than `#[derive(Deserialize)]` with `deny_unknown_fields`, because
//! serde stops at the first error and we want them all, each with its position.

use super::keys::{self, KEYS, Key, KeyDef};
use std::ops::Range;
use std::path::PathBuf;
use toml::de::{DeTable, DeValue};

/// A TOML value with its span, owned so that stage two does not borrow the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    /// Byte range of the value in the file.
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    /// `None`: an integer TOML accepts but that does not fit an `i64`.
    Integer(Option<i64>),
    Float(Option<f64>),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

impl Value {
    /// The type's name as a message says it: "found an integer".
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

/// One `key = value` (or `[table]`), with the key spelled out in full: `restart.delay`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Dotted key from the top of the file.
    pub key: String,
    /// Byte range of the key (its last segment) in the file.
    pub key_span: Range<usize>,
    pub node: Node,
}

/// Where an issue is.
#[derive(Debug, Clone, PartialEq)]
pub enum At {
    /// A byte range of the unit file.
    Span(Range<usize>),
    /// The whole unit file (line and column 0).
    File,
    /// Another file (an `env_file`), 1-based line and column.
    Elsewhere {
        path: PathBuf,
        line: usize,
        column: usize,
    },
}

/// A problem found in a unit file, before it is turned into a [`super::UnitError`].
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub at: At,
    pub key: Option<String>,
    pub message: String,
}

impl Issue {
    pub fn at_key(entry: &Entry, message: impl Into<String>) -> Issue {
        Issue {
            at: At::Span(entry.key_span.clone()),
            key: Some(entry.key.clone()),
            message: message.into(),
        }
    }

    pub fn at_value(entry: &Entry, node: &Node, message: impl Into<String>) -> Issue {
        Issue {
            at: At::Span(node.span.clone()),
            key: Some(entry.key.clone()),
            message: message.into(),
        }
    }
}

/// The unit file as written: the entry of every known key, untyped, with its spans.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawUnit {
    /// One slot per row of [`KEYS`], in its order.
    slots: Vec<Option<Entry>>,
}

impl RawUnit {
    /// The entry of `key`, if the file has it.
    pub fn get(&self, key: Key) -> Option<&Entry> {
        self.slots.get(key as usize).and_then(Option::as_ref)
    }

    /// The entry of `key` to change in place (a template's `%i`), if the file has it.
    pub fn get_mut(&mut self, key: Key) -> Option<&mut Entry> {
        self.slots.get_mut(key as usize).and_then(Option::as_mut)
    }

    /// The entries the file has, in the order of [`KEYS`].
    pub fn entries(&self) -> impl Iterator<Item = (&'static KeyDef, &Entry)> {
        KEYS.iter()
            .zip(&self.slots)
            .filter_map(|(def, slot)| Some((def, slot.as_ref()?)))
    }

    fn put(&mut self, key: Key, entry: Entry) {
        if self.slots.len() < KEYS.len() {
            self.slots.resize(KEYS.len(), None);
        }
        self.slots[key as usize] = Some(entry);
    }
}

/// Parses `text`. `None` when it is not valid TOML (the syntax errors are in `issues`); else the
/// raw unit, with unknown and not-yet-supported keys pushed to `issues`.
pub fn parse(text: &str, issues: &mut Vec<Issue>) -> Option<RawUnit> {
    let (table, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for error in errors {
            issues.push(Issue {
                at: At::Span(error.span().unwrap_or(0..0)),
                key: None,
                message: format!("invalid TOML: {}", error.message().trim_end()),
            });
        }
        return None;
    }
    let mut raw = RawUnit::default();
    for entry in entries(table.get_ref(), "") {
        sort_top(&mut raw, entry, issues);
    }
    Some(raw)
}

/// Puts a top-level entry in its slot, or the entries of a table in theirs.
fn sort_top(raw: &mut RawUnit, entry: Entry, issues: &mut Vec<Issue>) {
    // A quoted top-level key with a dot (`"restart.delay" = ...`) is not the dotted key.
    if let Some(def) = keys::find(&entry.key).filter(|def| def.table().is_none()) {
        raw.put(def.key, entry);
    } else if keys::is_table(&entry.key) {
        let table = entry.key.clone();
        for sub in sub_entries(entry, issues) {
            match keys::find(&sub.key) {
                Some(def) => raw.put(def.key, sub),
                None => issues.push(unknown(&sub, &table)),
            }
        }
    } else {
        issues.push(unknown_top(&entry));
    }
}

/// A table's entries, or an issue if `entry` is not a table.
fn sub_entries(entry: Entry, issues: &mut Vec<Issue>) -> Vec<Entry> {
    match entry.node.value {
        Value::Table(entries) => entries,
        ref other => {
            issues.push(Issue::at_value(
                &entry,
                &entry.node,
                format!(
                    "expected a table, found {}; write `[{}]` on a line of its own and its keys below it",
                    other.type_name(),
                    entry.key
                ),
            ));
            Vec::new()
        }
    }
}

/// An unknown key inside `[table]`: the closest key of the table, else its keys.
fn unknown(entry: &Entry, table: &str) -> Issue {
    let keys = keys::keys_of(table);
    let name = entry
        .key
        .strip_prefix(&format!("{table}."))
        .unwrap_or(&entry.key);
    let mut message = format!("unknown key `{}`", entry.key);
    match closest(name, keys.iter().copied()) {
        Some(best) => message.push_str(&format!(", did you mean `{table}.{best}`?")),
        None => message.push_str(&format!("; the keys of [{table}] are: {}", keys.join(", "))),
    }
    Issue::at_key(entry, message)
}

/// systemd's sections, which a unit file here does not have.
const SYSTEMD_SECTIONS: [&str; 3] = ["Unit", "Service", "Install"];

/// An unknown top-level key: a systemd key's equivalent (`ExecStart` is `exec`, whatever the
/// edit distance says: it says `restart`), else the closest top-level name, else the table
/// where a key of that name is, else the list of top-level names.
fn unknown_top(entry: &Entry) -> Issue {
    let key = entry.key.as_str();
    let top_level = keys::top_level();
    let mut message = format!("unknown key `{key}`");
    if let Some(ours) = keys::systemd_equivalent(key) {
        message.push_str(&format!(" (a systemd key), did you mean `{ours}`?"));
        if let Some((table, _)) = ours.split_once('.') {
            message.push_str(&format!(" (under [{table}])"));
        }
    } else if SYSTEMD_SECTIONS.contains(&key) {
        message.push_str(&format!(
            ": this is a systemd section; a unit file here is TOML without sections for \
             [{key}]: write the keys at the top level in svc's names (ExecStart = exec, \
             User = user, WorkingDirectory = workdir, ...; see svc.unit(5))"
        ));
    } else if let Some(best) = closest(key, top_level.iter().copied()) {
        message.push_str(&format!(", did you mean `{best}`?"));
    } else if let Some(def) = KEYS.iter().find(|def| def.leaf() == key) {
        let table = def.table().unwrap_or_default();
        message.push_str(&format!(", did you mean `{}` (under [{table}])?", def.name));
    } else {
        message.push_str(&format!("; the known keys are: {}", top_level.join(", ")));
    }
    Issue::at_key(entry, message)
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase().replace('-', "_");
    let word_length = word.chars().count();
    candidates
        .filter_map(|candidate| {
            let length = candidate.chars().count();
            let allowed = (length.max(word_length) / 3).max(1);
            // The distance is at least the difference of the lengths: skip the costly
            // computation (and keep thousands of bad keys cheap to report) when that is too far.
            if length.abs_diff(word_length) > allowed {
                return None;
            }
            let distance = strsim::damerau_levenshtein(&word, candidate);
            (distance <= allowed).then_some((distance, candidate))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The entries of a TOML table, keys prefixed with `prefix` (`"restart."`).
fn entries(table: &DeTable<'_>, prefix: &str) -> Vec<Entry> {
    table
        .iter()
        .map(|(key, value)| {
            let key_text = format!("{prefix}{}", key.get_ref());
            Entry {
                node: node(value, &key_text),
                key: key_text,
                key_span: key.span(),
            }
        })
        .collect()
}

fn node(value: &toml::Spanned<DeValue<'_>>, key: &str) -> Node {
    let converted = match value.get_ref() {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => Value::Integer(i64::from_str_radix(i.as_str(), i.radix()).ok()),
        DeValue::Float(f) => Value::Float(f.as_str().parse().ok()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => Value::Array(items.iter().map(|item| node(item, key)).collect()),
        DeValue::Table(table) => Value::Table(entries(table, &format!("{key}."))),
    };
    Node {
        value: converted,
        span: value.span(),
    }
}

/// Where each line of a text starts, to turn byte offsets into lines and columns in
/// O(log lines + line length) each: a file with thousands of errors is located in linear time,
/// not by rescanning from the start for each error.
pub struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of each line's first character; `starts[0]` is 0.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// 1-based line and column (in characters) of byte `offset`; an offset past the end or
    /// inside a character is taken back to the character's start.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line starting at or before `offset`; `starts[0]` is 0, so there is one.
        let line = self.starts.partition_point(|&start| start <= offset);
        let line_start = self.starts[line - 1];
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`. For many offsets into
/// one text, build a [`LineIndex`] once.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_column(offset)
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn line_index_agrees_with_a_scan_from_the_start() {
        let text = "a = 1\n\nb = \"é\u{1F600}x\"\r\nlast";
        let index = LineIndex::new(text);
        for offset in 0..=text.len() + 2 {
            let clamped = offset.min(text.len());
            let mut start = clamped;
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[line_start..].chars().count() + 1;
            assert_eq!(index.line_column(offset), (line, column), "offset {offset}");
        }
        assert_eq!(LineIndex::new("").line_column(0), (1, 1));
        assert_eq!(index.line_column(6), (2, 1));
    }
}

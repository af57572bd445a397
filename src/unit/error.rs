//! Errors in unit files: each names file, line, column and key.

use std::path::PathBuf;

/// One problem in one unit file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{}:{}: {}{}", path.display(), line, column, key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default(), message)]
pub struct UnitError {
    pub path: PathBuf,
    /// 1-based; 0 when the problem concerns the whole file (unreadable, bad name).
    pub line: usize,
    /// 1-based; 0 when the problem concerns the whole file.
    pub column: usize,
    /// Dotted key, e.g. `restart.delay`; `None` for syntax errors.
    pub key: Option<String>,
    /// What is wrong and, where it helps, what to write instead (`did you mean `workdir`?`).
    pub message: String,
}

/// Every problem found in one file (validation goes on after the first, to report them all).
#[derive(Debug, Clone, PartialEq)]
pub struct UnitErrors {
    /// The unit's name (file stem), for `svc list`.
    pub name: String,
    pub path: PathBuf,
    pub errors: Vec<UnitError>,
}

impl std::fmt::Display for UnitErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnitErrors {}

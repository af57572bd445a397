//! `env_file`: `KEY=value` lines, as Docker and systemd users already write them.
//!
//! Deliberately small: no variable expansion, no escapes, no multi-line values. What is accepted
//! is taken literally, and what is not is refused with its line, so a secret never ends up
//! half-parsed.

/// Largest env file read: a file of secrets and settings, never megabytes (and never
/// `/dev/zero`).
pub const MAX_ENV_FILE: u64 = 1024 * 1024;

/// What to do about a file that cannot be opened.
const FIX_PATH: &str = "; create it, fix the path (relative paths start at the unit file's \
                        directory), or remove the key";

/// Reads the env file at `path`, carefully, since svcd (often root) reads it on behalf of a
/// unit whose user may be able to change it:
///
/// - opened without blocking (a FIFO must not freeze svcd) and without following a symbolic
///   link as the last component (a swapped-in link to a root-only file must not be read);
/// - a regular file only (checked on the opened file), at most [`MAX_ENV_FILE`] bytes;
/// - nobody but svcd's user or root may be able to change it: the file must be owned by one of
///   them and not group- or world-writable, and so must its directory unless that is sticky
///   (like /tmp) and the file is svcd's user's own.
///
/// The error says what is wrong and what to do; the caller names the file.
pub fn read_env_file(path: &std::path::Path) -> Result<String, String> {
    use nix::fcntl::{OFlag, open, openat};
    use nix::sys::stat::{Mode, SFlag, fstat};
    use std::io::Read;

    let me = nix::unistd::Uid::effective().as_raw();
    let trusted = |uid: u32| uid == me || uid == 0;
    let writable_by_others = |mode: u32| mode & 0o022 != 0;
    let (dir, file) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(file)) => (
            if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            },
            file,
        ),
        _ => return Err("not a file name".to_string()),
    };
    let dir_fd = open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open its directory {}: {e}{FIX_PATH}", dir.display()))?;
    let dir_stat = fstat(&dir_fd).map_err(|e| format!("cannot stat its directory: {e}"))?;
    let fd = openat(
        &dir_fd,
        file,
        OFlag::O_RDONLY
            | OFlag::O_NONBLOCK
            | OFlag::O_NOFOLLOW
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP => "it is a symbolic link, which svcd does not follow for an \
                                     env_file; point env_file at the file itself"
            .to_string(),
        e => format!("{}{FIX_PATH}", std::io::Error::from(e)),
    })?;
    let stat = fstat(&fd).map_err(|e| format!("cannot stat it: {e}"))?;
    let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFREG {
        return Err(format!(
            "it is not a regular file (it is {}); an env_file must be a plain file",
            match kind {
                SFlag::S_IFIFO => "a FIFO",
                SFlag::S_IFCHR => "a character device",
                SFlag::S_IFBLK => "a block device",
                SFlag::S_IFSOCK => "a socket",
                SFlag::S_IFDIR => "a directory",
                _ => "not a file",
            }
        ));
    }
    if !trusted(stat.st_uid) || writable_by_others(stat.st_mode) {
        return Err(format!(
            "it may be changed by others than svcd's user (owner uid {}, mode {:o}); make it \
             owned by uid {me} or root and not group- or world-writable (chown, chmod go-w)",
            stat.st_uid,
            stat.st_mode & 0o7777
        ));
    }
    let sticky = dir_stat.st_mode & 0o1000 != 0;
    if (!trusted(dir_stat.st_uid) || writable_by_others(dir_stat.st_mode))
        && !(sticky && stat.st_uid == me)
    {
        return Err(format!(
            "its directory {} may be changed by others than svcd's user (owner uid {}, mode \
             {:o}), who could swap the file; move it to a directory only uid {me} or root can \
             write",
            dir.display(),
            dir_stat.st_uid,
            dir_stat.st_mode & 0o7777
        ));
    }
    if stat.st_size as u64 > MAX_ENV_FILE {
        return Err(format!(
            "it is larger than {MAX_ENV_FILE} bytes ({} bytes)",
            stat.st_size
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_ENV_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_ENV_FILE {
        return Err(format!("it is larger than {MAX_ENV_FILE} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
}

/// A line of an env file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvLineError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

/// Whether `name` may be an environment variable's name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses an env file: `KEY=value` lines; blank lines and lines starting with `#` are skipped;
/// a line may start with `export `; spaces around `=` are ignored; a value wholly in single or
/// double quotes loses them (nothing inside is interpreted). A key given twice: the last wins.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, Vec<EnvLineError>> {
    let mut vars = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(pair)) => vars.push(pair),
            Ok(None) => {}
            Err((byte, message)) => errors.push(EnvLineError {
                line: index + 1,
                column: line[..byte].chars().count() + 1,
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(errors)
    }
}

/// One line: `Ok(None)` for blanks and comments; an error carries the byte offset in the line.
fn parse_line(line: &str) -> Result<Option<(String, String)>, (usize, String)> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let mut start = line.len() - trimmed.len();
    if let Some(rest) = trimmed.strip_prefix("export")
        && rest.starts_with([' ', '\t'])
    {
        start = line.len() - rest.trim_start().len();
    }
    let body = &line[start..];
    let Some(eq) = body.find('=') else {
        return Err((
            start,
            "expected KEY=value (or a # comment); this line has no `=`".to_string(),
        ));
    };
    let key = body[..eq].trim_end();
    if !is_env_name(key) {
        return Err((
            start,
            format!(
                "`{key}` is not a valid variable name; use letters, digits and _, not starting with a digit"
            ),
        ));
    }
    let value_start = start + eq + 1;
    let raw_value = line[value_start..].trim();
    let value_at =
        value_start + (line[value_start..].len() - line[value_start..].trim_start().len());
    let value = match raw_value.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            if raw_value.len() >= 2 && raw_value.ends_with(quote) {
                &raw_value[1..raw_value.len() - 1]
            } else {
                return Err((
                    value_at,
                    format!(
                        "the value's opening {quote} has no closing {quote} at the end of the line"
                    ),
                ));
            }
        }
        _ => raw_value,
    };
    if value.contains('\0') {
        return Err((value_at, "the value contains a NUL character".to_string()));
    }
    Ok(Some((key.to_string(), value.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_accepted_forms() {
        let text = "# comment\n\nA=1\n  export B = two words \nC=\"quoted # not a comment\"\n\
                    D='single'\nE=\nF=a=b\n\t# indented comment\nexport_G=x\r\nH=\"\"\n";
        assert_eq!(
            parse_env_file(text),
            Ok(pairs(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "quoted # not a comment"),
                ("D", "single"),
                ("E", ""),
                ("F", "a=b"),
                ("export_G", "x"),
                ("H", ""),
            ]))
        );
    }

    #[test]
    fn reports_every_bad_line_with_its_position() {
        let text = "GOOD=1\nno equals sign\n1BAD=x\n  Q=\"open\nexport\n";
        let errors = parse_env_file(text).unwrap_err();
        let at: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(at, vec![(2, 1), (3, 1), (4, 5), (5, 1)]);
        assert!(errors[0].message.contains("KEY=value"));
        assert!(errors[1].message.contains("`1BAD`"));
        assert!(errors[2].message.contains("closing \""));
    }

    #[test]
    fn read_env_file_refuses_what_others_could_change() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("app.env");
        std::fs::write(&file, "A=1\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(read_env_file(&file).as_deref(), Ok("A=1\n"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o620)).expect("chmod");
        let error = read_env_file(&file).unwrap_err();
        assert!(error.contains("group- or world-writable"), "{error}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod dir");
        let error = read_env_file(&file).unwrap_err();
        assert!(error.contains("its directory"), "{error}");
        // A sticky directory (like /tmp) is fine for a file of svcd's own user.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777))
            .expect("chmod dir");
        assert!(read_env_file(&file).is_ok());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod dir");
        let link = dir.path().join("link.env");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        let error = read_env_file(&link).unwrap_err();
        assert!(error.contains("symbolic link"), "{error}");
        let missing = read_env_file(&dir.path().join("none.env")).unwrap_err();
        assert!(missing.contains("create it"), "{missing}");
    }

    #[test]
    fn env_names() {
        assert!(is_env_name("PORT"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name(""));
        assert!(!is_env_name("1A"));
        assert!(!is_env_name("A-B"));
        assert!(!is_env_name("A B"));
    }
}

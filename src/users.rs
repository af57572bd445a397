//! Users and groups, read from `/etc/passwd` and `/etc/group` by a parser of our own.
//!
//! Never through NSS (getpwnam, getgrnam, getgrouplist and nix's `User`/`Group`, which call
//! them): svcd is linked statically, and a static glibc still loads the NSS modules that
//! `/etc/nsswitch.conf` names (Debian's default names `systemd`), a shared library built for
//! another libc in the same process, which crashes it. musl's static builds read these two files
//! too. The price: users from LDAP or sssd are not seen; a unit's user must have a line in
//! `/etc/passwd`, or be given as a number.

use std::io::Read;
use std::path::Path;

/// Where users are read from.
pub const PASSWD: &str = "/etc/passwd";
/// Where groups are read from.
pub const GROUP: &str = "/etc/group";
/// Larger files are refused: a database of a million users is not a host svcd is for, and a
/// `/etc/passwd` made a device or a huge file must not make svcd read without end.
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// A line of `/etc/passwd`: `name:password:uid:gid:gecos:home:shell`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub name: String,
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
}

/// A line of `/etc/group`: `name:password:gid:member,member,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    /// User names given the group as a supplementary group.
    pub members: Vec<String>,
}

/// Why the user and group files could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct ReadError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// The entries of a passwd file's text, in order. Blank lines, `#` comments, NIS `+`/`-` lines
/// and malformed lines (not seven fields, an id that is not a number, an empty name) are
/// skipped, as glibc's and musl's readers do.
pub fn parse_passwd(text: &str) -> impl Iterator<Item = UserEntry> + '_ {
    text.lines().filter_map(|line| {
        let fields = fields(line, 7)?;
        Some(UserEntry {
            name: fields[0].to_string(),
            uid: fields[2].parse().ok()?,
            gid: fields[3].parse().ok()?,
        })
    })
}

/// The entries of a group file's text, in order; what is skipped: as [`parse_passwd`] (four
/// fields).
pub fn parse_group(text: &str) -> impl Iterator<Item = GroupEntry> + '_ {
    text.lines().filter_map(|line| {
        let fields = fields(line, 4)?;
        Some(GroupEntry {
            name: fields[0].to_string(),
            gid: fields[2].parse().ok()?,
            members: fields[3]
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect(),
        })
    })
}

/// The `count` `:`-separated fields of an entry line, or `None` for a line to skip.
fn fields(line: &str, count: usize) -> Option<Vec<&str>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() || line.starts_with(['#', '+', '-']) {
        return None;
    }
    let fields: Vec<&str> = line.split(':').collect();
    let name = fields.first()?;
    (fields.len() == count && !name.is_empty() && !name.contains(char::is_whitespace))
        .then_some(fields)
}

/// Reads a whole database file (bounded); bytes that are not UTF-8 spoil only their own lines.
pub fn read_file(path: &Path) -> Result<String, ReadError> {
    let error = |source| ReadError {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(error)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(error(std::io::Error::other(format!(
            "larger than {MAX_FILE} bytes"
        ))));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The first user of `/etc/passwd` named `name`.
pub fn user_by_name(name: &str) -> Result<Option<UserEntry>, ReadError> {
    find_user(|u| u.name == name)
}

/// The first user of `/etc/passwd` with `uid`.
pub fn user_by_uid(uid: u32) -> Result<Option<UserEntry>, ReadError> {
    find_user(|u| u.uid == uid)
}

/// The first group of `/etc/group` named `name`.
pub fn group_by_name(name: &str) -> Result<Option<GroupEntry>, ReadError> {
    find_group(|g| g.name == name)
}

fn find_user(matches: impl Fn(&UserEntry) -> bool) -> Result<Option<UserEntry>, ReadError> {
    Ok(parse_passwd(&read_file(Path::new(PASSWD))?).find(matches))
}

fn find_group(matches: impl Fn(&GroupEntry) -> bool) -> Result<Option<GroupEntry>, ReadError> {
    Ok(parse_group(&read_file(Path::new(GROUP))?).find(matches))
}

/// The groups of user `name` whose primary group is `primary`, as `getgrouplist` gives them:
/// `primary` first, then every group of `group_text` that lists `name` as a member, each once.
pub fn group_list(group_text: &str, name: &str, primary: u32) -> Vec<u32> {
    let mut groups = vec![primary];
    for group in parse_group(group_text) {
        if group.members.iter().any(|m| m == name) && !groups.contains(&group.gid) {
            groups.push(group.gid);
        }
    }
    groups
}

/// [`group_list`] from `/etc/group`.
pub fn groups_of(name: &str, primary: u32) -> Result<Vec<u32>, ReadError> {
    let text = read_file(Path::new(GROUP))?;
    Ok(group_list(&text, name, primary))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_TEXT: &str = "\
# a comment: root:x:5:5::/:/bin/sh
root:x:0:0:root:/root:/bin/bash

www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
+nisuser::::::
-excluded::::::
short:x:1000:1000
badid:x:12a:1000:::/bin/sh
toolong:x:1:1:a:b:c:d
:x:7:7::/:/bin/sh
with space:x:8:8::/:/bin/sh
dos:x:1001:1002:::/bin/sh\r
www-data:x:99:99:shadowed by the first:/:/bin/sh
";

    #[test]
    fn passwd_keeps_good_lines_and_skips_the_rest() {
        let users: Vec<(String, u32, u32)> = parse_passwd(PASSWD_TEXT)
            .map(|u| (u.name, u.uid, u.gid))
            .collect();
        assert_eq!(
            users,
            [
                ("root".to_string(), 0, 0),
                ("www-data".to_string(), 33, 33),
                ("dos".to_string(), 1001, 1002),
                ("www-data".to_string(), 99, 99),
            ]
        );
        // The first entry wins, as with glibc's files module.
        let first = parse_passwd(PASSWD_TEXT).find(|u| u.name == "www-data");
        assert_eq!(first.map(|u| u.uid), Some(33));
    }

    #[test]
    fn group_members_and_group_list() {
        let text = "\
root:x:0:
# adm:x:4:app
adm:x:4:syslog,app
users:x:100: app , other
broken:x:notanumber:app
app:x:1000:
dup:x:4:app
";
        let groups: Vec<GroupEntry> = parse_group(text).collect();
        assert_eq!(groups.len(), 5);
        assert_eq!(groups[1].members, ["syslog", "app"]);
        assert_eq!(groups[2].members, ["app", "other"]);
        assert_eq!(group_list(text, "app", 1000), [1000, 4, 100]);
        assert_eq!(group_list(text, "nobody-here", 65534), [65534]);
        // Membership is by exact name, not by prefix.
        assert_eq!(group_list(text, "ap", 1000), [1000]);
    }

    #[test]
    fn long_lines_and_odd_bytes_do_not_disturb_the_others() {
        let long_gecos = "g".repeat(100_000);
        let many = (0..5000)
            .map(|i| format!("u{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let text = format!(
            "big:x:5:5:{long_gecos}:/:/bin/sh\nafter:x:6:6::/:/bin/sh\n\u{fffd}bad:x:7:7::/:/bin/sh\n"
        );
        let names: Vec<String> = parse_passwd(&text).map(|u| u.name).collect();
        assert_eq!(names, ["big", "after", "\u{fffd}bad"]);
        let groups = format!("crowd:x:50:{many}\n");
        assert_eq!(group_list(&groups, "u4999", 1), [1, 50]);
    }

    #[test]
    fn read_file_is_bounded_and_lossy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passwd");
        std::fs::write(&path, b"a:x:1:1::/:/bin/sh\n\xff\xfe:x:2:2::/:/bin/sh\n").expect("write");
        let text = read_file(&path).expect("read");
        assert_eq!(parse_passwd(&text).count(), 2);
        let missing = read_file(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}

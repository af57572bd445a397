//! Resolving `user` and `group` before the fork, applying them after it.

use nix::unistd::{Gid, Group, Uid, User, getgrouplist, setgid, setgroups, setuid};
use std::ffi::CString;

/// Identity to take in the child. Built in the parent (lookups allocate and read files), applied
/// in the child with system calls only.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    uid: Option<Uid>,
    gid: Option<Gid>,
    groups: Option<Vec<Gid>>,
}

impl Credentials {
    /// Looks up `user` and `group` (names or numeric ids). Without `group`, the user's primary
    /// group; with a user, its supplementary groups too. Changing identity needs root.
    pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Credentials, String> {
        if user.is_none() && group.is_none() {
            return Ok(Credentials::default());
        }
        let mut creds = Credentials::default();
        let mut user_entry = None;
        if let Some(name) = user {
            let entry = lookup_user(name)?;
            creds.uid = Some(entry.uid);
            creds.gid = Some(entry.gid);
            user_entry = Some(entry);
        }
        if let Some(name) = group {
            creds.gid = Some(lookup_group(name)?);
        }
        let is_root = Uid::effective().is_root();
        let same_user = creds.uid.is_none_or(|u| u == Uid::effective());
        let same_group = creds.gid.is_none_or(|g| g == Gid::effective());
        if !is_root {
            if same_user && same_group {
                return Ok(Credentials::default());
            }
            return Err("user/group need svcd to run as root".to_string());
        }
        if let (Some(entry), Some(gid)) = (user_entry, creds.gid) {
            let cname = CString::new(entry.name.as_bytes())
                .map_err(|_| format!("user name `{}` has a NUL byte", entry.name))?;
            let groups = getgrouplist(&cname, gid)
                .map_err(|e| format!("cannot list the groups of `{}`: {e}", entry.name))?;
            creds.groups = Some(groups);
        } else if creds.gid.is_some() {
            // A group without a user: drop root's supplementary groups, keep only that one.
            creds.groups = Some(Vec::new());
        }
        Ok(creds)
    }

    /// Whether there is nothing to change.
    pub fn is_noop(&self) -> bool {
        self.uid.is_none() && self.gid.is_none() && self.groups.is_none()
    }

    /// Applies the identity; called in the child between fork and exec (no allocation).
    pub fn apply(&self) -> std::io::Result<()> {
        if let Some(groups) = &self.groups {
            setgroups(groups)?;
        }
        if let Some(gid) = self.gid {
            setgid(gid)?;
        }
        if let Some(uid) = self.uid {
            setuid(uid)?;
        }
        Ok(())
    }
}

fn lookup_user(name: &str) -> Result<User, String> {
    let found = match name.parse::<u32>() {
        Ok(id) => User::from_uid(Uid::from_raw(id)),
        Err(_) => User::from_name(name),
    };
    match found {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(format!("no such user `{name}`")),
        Err(e) => Err(format!("cannot look up user `{name}`: {e}")),
    }
}

fn lookup_group(name: &str) -> Result<Gid, String> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(Gid::from_raw(id));
    }
    match Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid),
        Ok(None) => Err(format!("no such group `{name}`")),
        Err(e) => Err(format!("cannot look up group `{name}`: {e}")),
    }
}

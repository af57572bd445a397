//! Resolving `user` and `group` before the clone; the child applies them (`process::vfork`).
//!
//! Names are looked up in `/etc/passwd` and `/etc/group` by [`crate::users`], never through
//! NSS (see there why).

use crate::users;
use nix::unistd::{Gid, Uid};

/// Identity to take in the child. Built in the parent (lookups allocate and read files), applied
/// in the child with raw system calls only (`process::vfork`).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    uid: Option<Uid>,
    gid: Option<Gid>,
    groups: Option<Vec<Gid>>,
}

impl Credentials {
    /// Looks up `user` and `group` (names or numeric ids). Without `group`, the user's primary
    /// group; with a user, its supplementary groups too (from `/etc/group`'s member lists). A
    /// numeric user without an entry gets the group of the same number and no supplementary
    /// groups. Changing identity needs root.
    ///
    /// `extra` (names or ids, `supplementary_groups`) are added to the supplementary groups;
    /// they too need root.
    pub fn resolve(
        user: Option<&str>,
        group: Option<&str>,
        extra: &[String],
    ) -> Result<Credentials, String> {
        if user.is_none() && group.is_none() && extra.is_empty() {
            return Ok(Credentials::default());
        }
        let mut creds = Credentials::default();
        // The name whose supplementary groups to take, when the user has an entry.
        let mut member = None;
        if let Some(name) = user {
            let (uid, gid, entry_name) = lookup_user(name)?;
            creds.uid = Some(Uid::from_raw(uid));
            creds.gid = Some(Gid::from_raw(gid));
            member = entry_name;
        }
        if let Some(name) = group {
            creds.gid = Some(Gid::from_raw(lookup_group(name)?));
        }
        let is_root = Uid::effective().is_root();
        let same_user = creds.uid.is_none_or(|u| u == Uid::effective());
        let same_group = creds.gid.is_none_or(|g| g == Gid::effective());
        if !is_root {
            if !extra.is_empty() {
                return Err("supplementary_groups need svcd to run as root".to_string());
            }
            if same_user && same_group {
                return Ok(Credentials::default());
            }
            return Err("user/group need svcd to run as root".to_string());
        }
        let gid = creds
            .gid
            .map_or_else(|| Gid::effective().as_raw(), Gid::as_raw);
        let mut groups = match member {
            Some(name) => users::groups_of(&name, gid).map_err(|e| e.to_string())?,
            // A group without a user, or a user without an entry: drop root's supplementary
            // groups, keep only the primary one.
            None => vec![gid],
        };
        for name in extra {
            let extra_gid = lookup_group(name)?;
            if !groups.contains(&extra_gid) {
                groups.push(extra_gid);
            }
        }
        creds.groups = Some(groups.into_iter().map(Gid::from_raw).collect());
        Ok(creds)
    }

    /// Whether `user` and `group` can be resolved here (for `svc check`, run as any user).
    /// The user and group to own what svcd makes for the unit (its directories); `None`:
    /// unchanged (svcd's own).
    pub fn owner(&self) -> (Option<Uid>, Option<Gid>) {
        (self.uid, self.gid)
    }

    pub fn check(user: Option<&str>, group: Option<&str>, extra: &[String]) -> Result<(), String> {
        if let Some(name) = user {
            lookup_user(name)?;
        }
        for name in extra {
            lookup_group(name)?;
        }
        if let Some(name) = group {
            lookup_group(name)?;
        }
        Ok(())
    }

    /// The user and group ids taken, if changed: the owner of what svcd makes for the unit.
    pub fn ids(&self) -> (Option<u32>, Option<u32>) {
        (self.uid.map(Uid::as_raw), self.gid.map(Gid::as_raw))
    }

    /// Whether there is nothing to change.
    pub fn is_noop(&self) -> bool {
        self.uid.is_none() && self.gid.is_none() && self.groups.is_none()
    }

    /// The supplementary groups to take, if changed.
    pub fn groups(&self) -> Option<Vec<u32>> {
        self.groups
            .as_ref()
            .map(|groups| groups.iter().map(|g| g.as_raw()).collect())
    }
}

/// `user` → (uid, primary gid, the entry's name if it has one).
fn lookup_user(name: &str) -> Result<(u32, u32, Option<String>), String> {
    let found = match name.parse::<u32>() {
        Ok(id) => users::user_by_uid(id),
        Err(_) => users::user_by_name(name),
    }
    .map_err(|e| format!("cannot look up user `{name}`: {e}"))?;
    match (found, name.parse::<u32>()) {
        (Some(user), _) => Ok((user.uid, user.gid, Some(user.name))),
        (None, Ok(id)) => Ok((id, id, None)),
        (None, Err(_)) => Err(format!(
            "no such user `{name}` in {} (svcd reads users only from there, not from NSS); \
             create it (useradd) or give a numeric uid",
            users::PASSWD
        )),
    }
}

/// `group` → gid; a number needs no entry.
fn lookup_group(name: &str) -> Result<u32, String> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    match users::group_by_name(name) {
        Ok(Some(group)) => Ok(group.gid),
        Ok(None) => Err(format!(
            "no such group `{name}` in {} (svcd reads groups only from there, not from NSS); \
             create it (groupadd) or give a numeric gid",
            users::GROUP
        )),
        Err(e) => Err(format!("cannot look up group `{name}`: {e}")),
    }
}

//! Passing held sockets to a unit by systemd's sd_listen_fds protocol: fds 3, 4, ... with
//! `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID`, the child's own pid.
//!
//! `LISTEN_PID` is known only in the child, after the clone: so the child itself puts the
//! sockets in place (`process::vfork`) and writes its pid into an environment entry made, with
//! room for any pid, before the clone; nothing in the child allocates.

use std::ffi::OsString;

/// The variables of the protocol, which a unit never inherits from svcd's own environment.
pub const VARS: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

const PID_PREFIX: &[u8] = b"LISTEN_PID=";
/// Room for any pid's digits and the NUL.
const PID_ROOM: usize = 21;

/// The protocol's variables for `names` (the sockets' names, in order), added to `env`.
pub fn add_env(env: &mut Vec<(OsString, OsString)>, names: &[String]) {
    env.retain(|(k, _)| !VARS.iter().any(|v| k == v));
    env.push(("LISTEN_FDS".into(), names.len().to_string().into()));
    env.push(("LISTEN_FDNAMES".into(), names.join(":").into()));
}

/// `LISTEN_PID=` and room for the digits of any pid and a NUL, for [`write_pid`].
pub fn pid_entry() -> Vec<u8> {
    let mut entry = PID_PREFIX.to_vec();
    entry.resize(PID_PREFIX.len() + PID_ROOM, 0);
    entry
}

/// Writes the decimal digits of `pid` then a NUL after the prefix of `entry` (a
/// [`pid_entry`]). Runs in the child: no allocation, no panic.
pub fn write_pid(entry: &mut [u8], pid: libc::c_long) {
    let mut digits = [0u8; PID_ROOM];
    let mut n = pid.unsigned_abs();
    let mut len = 0;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = digits
        .iter()
        .skip(PID_ROOM - len)
        .chain(std::iter::once(&0));
    let room = entry.iter_mut().skip(PID_PREFIX.len());
    for (slot, digit) in room.zip(digits) {
        *slot = *digit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_written_as_decimal_then_nul() {
        let mut entry = pid_entry();
        write_pid(&mut entry, 4_194_304);
        assert_eq!(&entry[..PID_PREFIX.len() + 8], b"LISTEN_PID=4194304\0");
        write_pid(&mut entry, 7);
        assert_eq!(&entry[..PID_PREFIX.len() + 2], b"LISTEN_PID=7\0");
        write_pid(&mut entry, libc::c_long::MAX);
        assert_eq!(&entry[PID_PREFIX.len()..], b"9223372036854775807\0\0");
    }

    #[test]
    fn inherited_protocol_variables_are_replaced() {
        let mut env = vec![
            ("LISTEN_FDS".into(), "9".into()),
            ("LISTEN_PID".into(), "1".into()),
            ("PATH".into(), "/bin".into()),
        ];
        add_env(&mut env, &["a".to_string(), "b".to_string()]);
        let env: Vec<(String, String)> = env
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        assert_eq!(
            env,
            [
                ("PATH".to_string(), "/bin".to_string()),
                ("LISTEN_FDS".to_string(), "2".to_string()),
                ("LISTEN_FDNAMES".to_string(), "a:b".to_string()),
            ]
        );
    }
}

//! Signal names as users write them (`SIGTERM`) and as status shows them.

use nix::sys::signal::Signal;

/// The name of signal `number` (`SIGKILL`), or `signal 42` for one without a name.
pub fn name(number: i32) -> String {
    match Signal::try_from(number) {
        Ok(signal) => signal.as_str().to_string(),
        Err(_) => format!("signal {number}"),
    }
}

/// Parses `SIGTERM`, `TERM` (any case) or a number into a signal number.
pub fn parse(text: &str) -> Option<i32> {
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).ok().map(|s| s as i32);
    }
    let upper = text.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<Signal>().ok().map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(name(9), "SIGKILL");
        assert_eq!(parse("SIGTERM"), Some(15));
        assert_eq!(parse("quit"), Some(3));
        assert_eq!(parse("9"), Some(9));
        assert_eq!(parse("SIGNOPE"), None);
        assert_eq!(name(200), "signal 200");
    }
}

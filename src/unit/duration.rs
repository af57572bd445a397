//! Durations (`"1m30s"`) and sizes (`"200M"`) as unit files write them.
//!
//! Both are strict on purpose: a typo such as `"5 s"` or `"10mb"` in a restart delay or a memory
//! limit is refused with the accepted forms, rather than guessed at.

use std::time::Duration;

/// What a duration may look like, for error messages.
pub const DURATION_FORMS: &str = "a duration is a number followed by a unit, d, h, m, s or ms, \
     largest unit first and each at most once, e.g. \"250ms\", \"5s\", \"1.5s\", \"1m30s\", \
     \"1h2m3s500ms\"; a number may have a decimal part (\"0.25h\"); \"0\" means no delay";

/// What a size may look like, for error messages.
pub const SIZE_FORMS: &str = "a size is a number of bytes, or a number followed by K, M, G or T \
     (powers of 1024, optionally followed by B or iB), e.g. 1048576, \"512K\", \"200M\", \"1GiB\"";

/// Units of a duration, largest first, with their length in nanoseconds.
const DURATION_UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

/// Most digits after the dot: nine are a nanosecond of a second, finer than anything svcd times.
const MAX_FRACTION_DIGITS: usize = 9;

/// Parses `"250ms"`, `"5s"`, `"2m"`, `"1h"`, `"1d"`, combinations such as `"1m30s"`
/// (largest unit first, each unit at most once), and `"0"`. As in systemd.time(7), each number
/// may have a decimal part: `"1.5s"`, `"0.25h"`, `"1.5m30s"` (two minutes); at least one digit
/// on each side of the dot.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration \"{text}\": {why}; {DURATION_FORMS}");
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err(bad("it is negative"));
    }
    let mut rest = text;
    let mut total_ns: u128 = 0;
    // Index into DURATION_UNITS of the last unit seen: the next one must come after it.
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let (whole, after) = rest.split_at(digits);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => {
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 {
                    return Err(bad(&format!("no digit after the dot of \"{whole}.\"")));
                }
                if digits > MAX_FRACTION_DIGITS {
                    return Err(bad(&format!(
                        "more than {MAX_FRACTION_DIGITS} digits after the dot"
                    )));
                }
                after.split_at(digits)
            }
            None => ("", after),
        };
        let number = if fraction.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{fraction}")
        };
        let letters = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (unit, after) = after.split_at(letters);
        if unit.is_empty() {
            return Err(bad(&format!("the number {number} has no unit")));
        }
        let Some(index) = DURATION_UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(bad(&format!("unknown unit \"{unit}\"")));
        };
        if last_unit.is_some_and(|last| index <= last) {
            return Err(bad(&format!("unit \"{unit}\" is repeated or out of order")));
        }
        last_unit = Some(index);
        let length = u128::from(DURATION_UNITS[index].1);
        let whole: u128 = whole.parse().map_err(|_| bad("the number is too large"))?;
        // `fraction` has 1..=9 digits: it and 10^digits fit easily, and so does their product
        // with a day in nanoseconds.
        let part = if fraction.is_empty() {
            0
        } else {
            let numerator: u128 = fraction.parse().map_err(|_| bad("expected a number"))?;
            numerator * length / 10u128.pow(fraction.len() as u32)
        };
        total_ns = whole
            .checked_mul(length)
            .and_then(|ns| ns.checked_add(part))
            .and_then(|ns| total_ns.checked_add(ns))
            .ok_or_else(|| bad("it is too large"))?;
        rest = after;
    }
    // The same bound as ever: a whole number of milliseconds that fits a u64.
    if u64::try_from(total_ns / 1_000_000).is_err() {
        return Err(bad("it is too large"));
    }
    let secs = (total_ns / 1_000_000_000) as u64;
    // Below 10^9 by the remainder: fits.
    let nanos = (total_ns % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// The compact form of `duration`, as [`parse_duration`] reads it: `"1m30s"`, `"400ms"`,
/// `"0s"`. Precision is one millisecond; anything finer is dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (name, length) in DURATION_UNITS {
        let length = length / 1_000_000;
        let count = ms / length;
        if count > 0 {
            out.push_str(&format!("{count}{name}"));
            ms %= length;
        }
    }
    out
}

/// A size for people: `"200M"`, `"31.5M"`, `"1.2G"`, `"512"` (bytes); powers of 1024, one
/// decimal below 100 of a unit when it is not whole.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("T", 40), ("G", 30), ("M", 20), ("K", 10)];
    for (name, shift) in UNITS {
        let unit = 1u64 << shift;
        if bytes >= unit {
            let value = bytes as f64 / unit as f64;
            return if bytes.is_multiple_of(unit) || value >= 100.0 {
                format!("{}{name}", (value.floor()) as u64)
            } else {
                let tenths = (value * 10.0).floor() / 10.0;
                if tenths.fract() == 0.0 {
                    format!("{tenths:.0}{name}")
                } else {
                    format!("{tenths:.1}{name}")
                }
            };
        }
    }
    bytes.to_string()
}

/// Parses a size written as a string: `"1024"`, `"512K"`, `"200M"`, `"1G"`, `"1T"` (powers of
/// 1024); the suffix may be followed by `B` or `iB` (`"200MB"`, `"200MiB"` are both
/// 200 × 1024 × 1024), and a plain number may end in `B`. The letter may be lower case.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("invalid size \"{text}\": {why}; {SIZE_FORMS}");
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad(if text.is_empty() {
            "it is empty"
        } else if text.starts_with('-') {
            "it is negative"
        } else {
            "expected a number"
        }));
    }
    let (number, suffix) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| bad("it is too large"))?;
    let mut chars = suffix.chars();
    let (shift, tail) = match chars.next().map(|c| c.to_ascii_uppercase()) {
        None => return Ok(number),
        Some('B') => (0, chars.as_str()),
        Some('K') => (10, chars.as_str()),
        Some('M') => (20, chars.as_str()),
        Some('G') => (30, chars.as_str()),
        Some('T') => (40, chars.as_str()),
        Some(_) => return Err(bad(&format!("unknown suffix \"{suffix}\""))),
    };
    let tail_ok = match shift {
        0 => tail.is_empty(),
        _ => matches!(tail, "" | "B" | "iB"),
    };
    if !tail_ok {
        return Err(bad(&format!("unknown suffix \"{suffix}\"")));
    }
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| bad("it is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people() {
        assert_eq!(format_size(512), "512");
        assert_eq!(format_size(200 << 20), "200M");
        assert_eq!(format_size((212 << 20) + 400 * 1024), "212M");
        assert_eq!(format_size((31 << 20) + 512 * 1024), "31.5M");
        assert_eq!(format_size((1 << 30) + 205 * (1 << 20)), "1.2G");
        assert_eq!(format_size(2047), "1.9K");
        assert_eq!(format_size(1 << 10), "1K");
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_accepted() {
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("5s"), Ok(ms(5_000)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1d"), Ok(ms(86_400_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1h2m3s500ms"), Ok(ms(3_723_500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90s"), Ok(ms(90_000)));
    }

    #[test]
    fn durations_with_a_decimal_part_as_systemd_reads_them() {
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("0.5s"), Ok(ms(500)));
        assert_eq!(parse_duration("0.25h"), Ok(ms(900_000)));
        assert_eq!(parse_duration("1.5m30s"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1.5d"), Ok(ms(129_600_000)));
        assert_eq!(parse_duration("2.0s"), Ok(ms(2_000)));
        assert_eq!(parse_duration("0.0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0.5ms"), Ok(Duration::from_micros(500)));
        // Nine digits after the dot: a nanosecond; the tenth is refused, not dropped.
        assert_eq!(parse_duration("0.000000001s"), Ok(Duration::from_nanos(1)));
        assert_eq!(
            parse_duration("1.123456789s"),
            Ok(Duration::new(1, 123_456_789))
        );
        assert!(
            parse_duration("1.1234567891s")
                .unwrap_err()
                .contains("more than 9 digits after the dot")
        );
        assert!(
            parse_duration("1.s")
                .unwrap_err()
                .contains("no digit after the dot")
        );
        assert!(
            parse_duration("1.5")
                .unwrap_err()
                .contains("1.5 has no unit")
        );
        assert!(parse_duration("1.5s1.5s").unwrap_err().contains("repeated"));
    }

    #[test]
    fn durations_too_large_are_refused_not_wrapped() {
        // The largest accepted: u64::MAX milliseconds.
        let max = u64::MAX;
        assert_eq!(parse_duration(&format!("{max}ms")), Ok(ms(max)));
        for text in [
            "213503982334.7d".to_string(),
            "99999999999999999999999999999999999999999d".to_string(),
            "9999999999999999999999999999999999999999999999s".to_string(),
            format!("{max}d{max}h"),
        ] {
            let err = parse_duration(&text).expect_err(&text);
            assert!(err.contains("too large"), "{text}: {err}");
        }
        assert_eq!(
            parse_duration("213503982334.6d"),
            Ok(ms(18_446_744_073_709_440_000))
        );
    }

    #[test]
    fn durations_refused_with_the_accepted_forms() {
        for text in [
            "",
            "-5s",
            "5",
            "5x",
            "s",
            "1s1m",
            "1s1s",
            "5 s",
            " 5s",
            "1.s",
            ".5s",
            "1..5s",
            "1.5.5s",
            "1.5",
            "1.0000000001s",
            "1,5s",
            "5S",
            "10000000000000d",
        ] {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains("\"250ms\""), "{text}: {err}");
        }
        assert!(
            parse_duration("5x")
                .unwrap_err()
                .contains("unknown unit \"x\"")
        );
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
    }

    #[test]
    fn durations_formatted_compactly_and_round_trip() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(ms(400)), "400ms");
        assert_eq!(format_duration(ms(90_000)), "1m30s");
        assert_eq!(format_duration(ms(3_723_500)), "1h2m3s500ms");
        assert_eq!(format_duration(ms(86_400_000 + 1)), "1d1ms");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1ms");
        for n in [1, 999, 1_000, 61_001, 3_600_000, 90_061_001] {
            assert_eq!(parse_duration(&format_duration(ms(n))), Ok(ms(n)));
        }
    }

    #[test]
    fn sizes_accepted() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("200M"), Ok(200 << 20));
        assert_eq!(parse_size("200MB"), Ok(200 << 20));
        assert_eq!(parse_size("200MiB"), Ok(200 << 20));
        assert_eq!(parse_size("200m"), Ok(200 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
    }

    #[test]
    fn sizes_refused_with_the_accepted_forms() {
        for text in [
            "",
            "-1",
            "M",
            "1X",
            "1Mb",
            "1MiBB",
            "1 M",
            "1.5G",
            "100Bi",
            "99999999999T",
        ] {
            let err = parse_size(text).expect_err(text);
            assert!(err.contains("\"512K\""), "{text}: {err}");
        }
    }
}

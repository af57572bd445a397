//! Wall-clock time as RFC 3339 (UTC), and "5min ago" spans, without a date crate.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The wall-clock time of a monotonic `instant`, taking `now` pairs read together.
pub fn wall_clock(instant: Instant, now: Instant, now_wall: SystemTime) -> SystemTime {
    if instant <= now {
        now_wall.checked_sub(now - instant).unwrap_or(UNIX_EPOCH)
    } else {
        now_wall + (instant - now)
    }
}

/// `2026-11-25T13:10:02.123Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    // Digit by digit, not through `format!`'s padding, which runs only for a field under 10 (a
    // path bench/hot_text.py's trace of svcd's answers may miss); each answer formats every
    // unit's `since`.
    let mut out = String::with_capacity(24);
    let fields = [
        (year.unsigned_abs(), 4, '-'),
        (u64::from(month), 2, '-'),
        (u64::from(day), 2, 'T'),
        (rem / 3600, 2, ':'),
        (rem / 60 % 60, 2, ':'),
        (rem % 60, 2, '.'),
        (u64::from(since_epoch.subsec_millis()), 3, 'Z'),
    ];
    for (value, width, then) in fields {
        push_padded(&mut out, value, width);
        out.push(then);
    }
    out
}

/// `value` in decimal, with zeros ahead to `width` digits (as `{value:0width$}`).
fn push_padded(out: &mut String, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let from = at.min(digits.len().saturating_sub(width));
    out.extend(digits[from..].iter().map(|&digit| char::from(digit)));
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A short human span: `850ms`, `12s`, `5min`, `3h 2min`, `2d 4h`.
pub fn human_span(span: Duration) -> String {
    let secs = span.as_secs();
    if secs == 0 {
        return format!("{}ms", span.as_millis());
    }
    if secs < 60 {
        return format!("{secs}s");
    }
    let mins = secs / 60;
    if mins < 60 {
        return format!("{mins}min {}s", secs % 60);
    }
    let hours = mins / 60;
    if hours < 24 {
        return format!("{hours}h {}min", mins % 60);
    }
    format!("{}d {}h", hours / 24, hours % 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_612_202_123);
        assert_eq!(rfc3339(t), "2026-11-25T13:10:02.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
        let far = UNIX_EPOCH + Duration::from_secs(253_402_300_800); // 10000-01-01
        assert_eq!(rfc3339(far), "10000-01-01T00:00:00.000Z");
    }

    proptest::proptest! {
        /// Written digit by digit, it reads as `format!`'s padding would have it.
        #[test]
        fn rfc3339_pads_as_format_does(millis in 0u64..400_000_000_000_000) {
            let time = UNIX_EPOCH + Duration::from_millis(millis);
            let secs = millis / 1000;
            let (year, month, day) = civil_from_days((secs / 86_400) as i64);
            let rem = secs % 86_400;
            let expected = format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
                rem / 3600,
                rem / 60 % 60,
                rem % 60,
                millis % 1000
            );
            proptest::prop_assert_eq!(rfc3339(time), expected);
        }
    }

    #[test]
    fn spans_read_at_a_glance() {
        assert_eq!(human_span(Duration::from_millis(850)), "850ms");
        assert_eq!(human_span(Duration::from_secs(300)), "5min 0s");
        assert_eq!(human_span(Duration::from_secs(3 * 3600 + 120)), "3h 2min");
    }
}

//! Durations and sizes: any text parses or is refused, never a panic; a parsed duration
//! formats back to the same value (to the millisecond).
#![no_main]

use libfuzzer_sys::fuzz_target;
use svc::unit::duration::{format_duration, parse_duration, parse_size};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_size(text);
    if let Ok(duration) = parse_duration(text) {
        let whole_ms = std::time::Duration::from_millis(duration.as_millis() as u64);
        assert_eq!(
            parse_duration(&format_duration(duration)),
            Ok(whole_ms),
            "{text}"
        );
    }
});

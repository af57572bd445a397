//! The sd_notify message parser: any datagram splits into `KEY=value` pairs, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for (key, value) in svc::daemon::parse_notify(&text) {
        assert!(!key.contains('\n') && !value.contains('\n'));
    }
});

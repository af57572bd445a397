//! The control protocol's request decoder: any line is a request or an error answer, never a
//! panic; a request it accepts encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use svc::control::protocol::parse_request;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = parse_request(line) {
        let encoded = serde_json::to_string(&request).expect("a request encodes");
        assert_eq!(parse_request(&encoded), Ok(request));
    }
});

//! The unit file parser and validator: any text gives a unit or errors, never a panic, and
//! every error has a position inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // An env_file is read from disk at validation (a device such as /dev/zero would only
    // measure the disk, not the parser): leave it out.
    if text.contains("env_file") {
        return;
    }
    let path = Path::new("fuzz/app.toml");
    if let Err(errors) = svc::unit::validate::validate(path, text) {
        let lines = text.split('\n').count();
        for error in &errors.errors {
            assert!(error.line <= lines, "{error} is past the last line {lines}");
        }
    }
});

//! Unit file validation benchmark: how long does a large broken file take to report?
//!
//! `cargo bench --bench units`. A 420 KB file of 21,000 unknown keys once blocked a reload for
//! seconds, each error's line found by rescanning the text from the start; with a line index
//! the time grows linearly with the file. Figures: the time to validate that file, and the
//! time per error.

use std::path::Path;
use std::time::Instant;

fn main() {
    for count in [2_100, 21_000] {
        let mut text = String::from("exec = \"true\"\n");
        for i in 0..count {
            text.push_str(&format!("wokdir_{i:08} = 1\n"));
        }
        let started = Instant::now();
        let result = svc::unit::validate::validate(Path::new("big.toml"), &text);
        let elapsed = started.elapsed();
        let errors = result.err().map_or(0, |e| e.errors.len());
        println!(
            "validate {} KB with {errors} errors: {elapsed:.2?} ({:.2?} per error)",
            text.len() / 1000,
            elapsed / errors.max(1) as u32
        );
    }
}

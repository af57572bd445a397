//! Links svc with `src/bin/svc.ld`, which places the functions `svc status` runs side by side,
//! and svcd with `src/bin/svcd.ld`, which does the same for what svcd runs to answer it (both
//! written by `bench/hot_text.py`, which says why). The tests link as before.

fn main() {
    // A linker script of ELF linkers (lld, GNU ld), which every Linux target has.
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    for bin in ["svc", "svcd"] {
        let script = format!("src/bin/{bin}.ld");
        println!("cargo::rerun-if-changed={script}");
        if linux {
            println!("cargo::rustc-link-arg-bin={bin}=-Wl,-T,{dir}/{script}");
        }
    }
}

//! Links svc with `src/bin/svc.ld`, which places the functions `svc status` runs side by side
//! (written by `bench/hot_text.py`, which says why). svcd and the tests link as before.

fn main() {
    let script = "src/bin/svc.ld";
    println!("cargo::rerun-if-changed={script}");
    // A linker script of ELF linkers (lld, GNU ld), which every Linux target has.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo::rustc-link-arg-bin=svc=-Wl,-T,{dir}/{script}");
    }
}

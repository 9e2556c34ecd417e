//! Builds the guest test kernels in images/ with the host's gcc, binutils
//! and make, so `cargo build` produces everything the tests and the demo
//! boot. The kernels land in images/build/<name>.elf.

use std::path::Path;
use std::process::Command;

fn main() {
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("images");
    println!("cargo:rerun-if-changed=images/Makefile");
    if let Ok(entries) = std::fs::read_dir(&images) {
        for e in entries.flatten() {
            let p = e.path();
            // Sources only: build/ holds the outputs and would retrigger us.
            if p.is_dir() && p.file_name().is_some_and(|n| n != "build") {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    if std::env::var_os("RINGSIDE_SKIP_IMAGES").is_some() {
        println!("cargo:warning=RINGSIDE_SKIP_IMAGES is set: guest images not rebuilt");
        return;
    }
    let mut make = Command::new("make");
    make.arg("-C").arg(&images).arg("WERROR=1");
    if let Some(flags) = std::env::var_os("CARGO_MAKEFLAGS") {
        make.env("MAKEFLAGS", flags);
    }
    match make.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "building the guest images failed ({s}): run `make -C images` to see why; \
             they need gcc, binutils and make (scripts/deps.sh installs them)"
        ),
        Err(e) => panic!(
            "could not run make to build the guest images ({e}): install make, gcc and \
             binutils (scripts/deps.sh does it)"
        ),
    }
}

//! Links the module with a version script so that it exports only the pam_sm_* entry points.

fn main() {
    // Read at run time: a compile-time `env!` would bake in the path of whichever checkout
    // first compiled this script, and a cached build script would then point elsewhere.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = std::path::Path::new(&manifest_dir).join("exports.map");
    println!("cargo:rerun-if-changed={}", script.display());
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        script.display()
    );
}

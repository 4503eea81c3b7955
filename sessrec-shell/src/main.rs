//! sessrec-shell: see the library and sessrec-shell(8).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(sessrec_shell::run());
}

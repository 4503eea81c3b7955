//! The sessrec operator CLI.
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(sessrec::cli::run(args));
}

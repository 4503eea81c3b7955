//! `sudo-iolog-import`: imports sudo I/O logs into sessrec session records.
#![forbid(unsafe_code)]

use sudo_iolog_import::cli;

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", cli::USAGE);
        return;
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("sudo-iolog-import {}", sessrec_core::VERSION);
        return;
    }
    let args = match cli::parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprint!("sudo-iolog-import: {e}\n{}", cli::USAGE);
            std::process::exit(2);
        }
    };
    sessrec_core::sys::open_syslog(c"sudo-iolog-import");
    std::process::exit(cli::main_with(args));
}

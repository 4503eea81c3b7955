//! `sessrec-audit-import`: writes the kernel's audit records of exec and connect into sessrec
//! session records.
#![forbid(unsafe_code)]

use audit_import::cli;

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", cli::USAGE);
        return;
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("sessrec-audit-import {}", sessrec_core::VERSION);
        return;
    }
    let args = match cli::parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprint!("sessrec-audit-import: {e}\n{}", cli::USAGE);
            std::process::exit(2);
        }
    };
    sessrec_core::sys::open_syslog(c"sessrec-audit-import");
    std::process::exit(cli::main_with(args));
}

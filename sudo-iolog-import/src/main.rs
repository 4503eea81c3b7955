//! `sudo-iolog-import`: imports sudo I/O logs into sessrec session records.
#![forbid(unsafe_code)]

use sudo_iolog_import::cli;

fn main() {
    sessrec_core::import::cli::main(
        c"sudo-iolog-import",
        cli::USAGE,
        cli::parse_args,
        cli::main_with,
    )
}

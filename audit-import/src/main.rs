//! `sessrec-audit-import`: writes the kernel's audit records of exec and connect into sessrec
//! session records.
#![forbid(unsafe_code)]

use audit_import::cli;

fn main() {
    sessrec_core::import::cli::main(
        c"sessrec-audit-import",
        cli::USAGE,
        cli::parse_args,
        cli::main_with,
    )
}

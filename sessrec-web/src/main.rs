#![forbid(unsafe_code)]

fn main() {
    std::process::exit(sessrec_web::run(std::env::args().skip(1).collect()));
}

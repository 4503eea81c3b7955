//! Writes a synthetic record tree with the real record writer, for bench/cli.
//!   gen_records DIR SESSIONS OUTPUT_BYTES_PER_SESSION [HOST]
//! With HOST (bench/fleet), the records name that host (default `bastion.test`).
//! Each session: a login, one shell channel with typed commands and `OUTPUT_BYTES` of
//! coloured, word-like output, one exec channel, and a logout.

use std::path::PathBuf;

use sessrec_core::testing::synth::{id_at, SynthSession};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 && args.len() != 4 {
        eprintln!("usage: gen_records DIR SESSIONS OUTPUT_BYTES_PER_SESSION [HOST]");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[0]);
    let sessions: u64 = args[1].parse().expect("SESSIONS");
    let bytes: usize = args[2].parse().expect("OUTPUT_BYTES_PER_SESSION");
    let host = args.get(3).map_or("bastion.test", String::as_str);
    std::fs::create_dir_all(&dir).expect("create DIR");
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let now_ms = sessrec_core::time::Timestamp::now().as_micros() as u64 / 1000;
    for i in 0..sessions {
        // Spread over the last 30 days.
        let id = id_at(now_ms - (next() % (30 * 86_400_000))).expect("id");
        let user = format!("user{}", i % 50);
        let mut s = SynthSession::login_on(
            host,
            &dir,
            id,
            &user,
            &format!("{user}@example.com"),
            &format!("198.51.100.{}", i % 250),
        )
        .expect("login");
        let mut ch = s.channel("shell", "pty", None).expect("channel");
        let mut t = 100_000;
        ch.typed(&mut t, "$ ", "ls -l --color=always /srv", "")
            .expect("typed");
        let mut written = 0;
        while written < bytes {
            let mut line = String::with_capacity(120);
            line.push_str("\x1b[01;34m");
            for _ in 0..8 {
                line.push_str(words[(next() % words.len() as u64) as usize]);
                line.push(' ');
            }
            line.push_str(&format!("\x1b[0m{}\r\n", next() % 100_000));
            t += 200;
            ch.output(t, line.as_bytes()).expect("output");
            written += line.len();
        }
        ch.typed(&mut t, "$ ", "exit", "").expect("typed");
        s.finished(ch, 0).expect("end");
        let mut ex = s.channel("exec", "pipe", Some("uptime")).expect("exec");
        ex.output(
            1000,
            b" 10:00:00 up 42 days,  1 user,  load average: 0.00, 0.01, 0.05\n",
        )
        .expect("output");
        s.finished(ex, 0).expect("end");
        s.logout().expect("logout");
    }
}

//! Randomised robustness check of the decoders: mutated real captures, random SFTP packets and
//! random bytes, in random chunkings and directions. Checks that nothing panics, that held
//! memory stays within its bounds at every step, that no event line grows unbounded, that the
//! summary counts every byte, and that the relay's splice path (payload only counted) decodes
//! exactly as feeding every byte does. `cargo test` runs a short round; for a long run:
//! `SESSREC_FUZZ_SECS=600 cargo test -p sessrec-shell --lib transfer::fuzz -- --ignored`.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::fixtures::{load, FIXTURES};
use super::scp::MAX_AHEAD_BYTES;
use super::sftp::MAX_PACKET_BYTES;
use super::{classify, TransferCommand, TransferConfig, TransferMonitor};

/// xorshift64*: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

type Chunks = Vec<(bool, Vec<u8>)>;

/// Memory a monitor may hold: the larger of the SFTP bound (two packet buffers plus the
/// tracking budget) and the scp bound (bytes held ahead plus one chunk), with slack for
/// allocator rounding.
const MEMORY_BOUND: usize = 16 * 1024 * 1024 + 4 * MAX_PACKET_BYTES + 2 * MAX_AHEAD_BYTES;
const EVENT_BOUND: usize = 64 * 1024;

fn commands() -> Vec<TransferCommand> {
    let cfg = TransferConfig::default();
    [
        "/usr/lib/openssh/sftp-server",
        "scp -t /srv/in",
        "scp -r -f /srv/out",
        "rsync --server . /x",
    ]
    .iter()
    .map(|c| classify(c, false, &cfg).expect("a transfer"))
    .collect()
}

fn mutate(rng: &mut Rng, chunks: &mut Chunks) {
    for _ in 0..1 + rng.below(8) {
        if chunks.is_empty() {
            chunks.push((rng.chance(2), vec![0; rng.below(16)]));
        }
        let i = rng.below(chunks.len());
        match rng.below(7) {
            0 => {
                let data = &mut chunks[i].1;
                if !data.is_empty() {
                    let at = rng.below(data.len());
                    data[at] = rng.next() as u8;
                }
            }
            1 => {
                let data = &mut chunks[i].1;
                let at = rng.below(data.len() + 1);
                let len = rng.below(64);
                data.splice(at..at, (0..len).map(|_| rng.next() as u8));
            }
            2 => {
                let data = &mut chunks[i].1;
                if !data.is_empty() {
                    let at = rng.below(data.len());
                    let len = rng.below(data.len() - at + 1);
                    data.drain(at..at + len);
                }
            }
            3 => {
                let copy = chunks[i].clone();
                chunks.insert(rng.below(chunks.len() + 1), copy);
            }
            4 => {
                chunks.remove(i);
            }
            5 => chunks[i].0 = !chunks[i].0,
            _ => {
                // Interesting lengths where a length or count is expected.
                let data = &mut chunks[i].1;
                if data.len() >= 4 {
                    let at = rng.below(data.len() - 3);
                    let v: u32 = [0, 1, 0x7fff_ffff, 0xffff_ffff, 0x4_0000, 255, 256][rng.below(7)];
                    data[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
}

fn random_sftp_packet(rng: &mut Rng) -> Vec<u8> {
    let kinds = [
        1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 101, 102, 103,
        104, 105, 200, 201,
    ];
    let mut body = vec![kinds[rng.below(kinds.len())]];
    body.extend_from_slice(&(rng.below(8) as u32).to_be_bytes());
    for _ in 0..rng.below(6) {
        match rng.below(3) {
            0 => body.extend_from_slice(&(rng.next() as u32 % 40).to_be_bytes()),
            1 => {
                let s: Vec<u8> = (0..rng.below(12)).map(|_| rng.next() as u8).collect();
                body.extend_from_slice(&(s.len() as u32).to_be_bytes());
                body.extend_from_slice(&s);
            }
            _ => body.extend_from_slice(&rng.next().to_be_bytes()),
        }
    }
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

fn run_one(
    rng: &mut Rng,
    cmd: &TransferCommand,
    chunks: &Chunks,
    seen: &mut BTreeMap<String, u64>,
) {
    let mut m = TransferMonitor::new(cmd);
    // The same traffic as the relay hands it over when it splices: skippable bytes only
    // counted, reads cut at the decoder's limit. It must decode exactly alike.
    let mut relayed = TransferMonitor::new(cmd);
    let (mut up, mut down) = (0u64, 0u64);
    let mut now = 0;
    let mut check = |events: Vec<super::TransferEvent>| {
        for e in events {
            *seen
                .entry(format!("{} {}", e.protocol().as_str(), e.op()))
                .or_default() += 1;
            let line = serde_json::to_string(&e.to_fields()).expect("serialisable");
            assert!(line.len() < EVENT_BOUND, "event of {} bytes", line.len());
        }
    };
    for (from_client, data) in chunks {
        now += 1 + rng.below(1000) as u64;
        let split = 1 + rng.below(data.len().max(1));
        for piece in data.chunks(split) {
            if *from_client {
                up += piece.len() as u64;
                m.client_to_server(now, piece);
                relayed.client_to_server(now, piece);
            } else {
                down += piece.len() as u64;
                m.server_to_client(now, piece);
                relay_down(&mut relayed, now, piece);
            }
            assert!(
                m.buffered_bytes() <= MEMORY_BOUND,
                "holds {} bytes",
                m.buffered_bytes()
            );
        }
        if rng.chance(3) {
            let events = m.drain_events();
            assert_eq!(json(&relayed.drain_events()), json(&events));
            check(events);
        }
    }
    let end = m.finish(now + 1, Some(0));
    assert_eq!(json(&relayed.finish(now + 1, Some(0))), json(&end));
    let summary = end.last().expect("a summary").to_fields();
    assert_eq!(summary["op"], "summary");
    assert_eq!(summary["bytes_from_client"], up);
    assert_eq!(summary["bytes_to_client"], down);
    check(end);
    assert!(m.finish(now + 2, Some(0)).is_empty());
    assert!(m.drain_events().is_empty());
}

/// Feeds `piece` the way the relay does when it splices.
fn relay_down(m: &mut TransferMonitor, now: u64, mut piece: &[u8]) {
    while !piece.is_empty() {
        let skip = m.server_to_client_skippable().min(piece.len());
        if skip > 0 {
            m.server_to_client_skipped(now, skip);
            piece = &piece[skip..];
        } else {
            let limit = m.server_to_client_read_limit().unwrap_or(piece.len());
            let n = limit.clamp(1, piece.len());
            m.server_to_client(now, &piece[..n]);
            piece = &piece[n..];
        }
    }
}

/// Events as JSON, for comparing two ways of feeding. Where decoding stopped, the byte counts
/// depend on how the stream was cut into reads (as they would with any other read size), so
/// they are left out.
fn json(events: &[super::TransferEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let mut fields = e.to_fields();
            if e.op() == "decode_stopped" {
                fields.remove("bytes_from_client");
                fields.remove("bytes_to_client");
            }
            serde_json::to_string(&fields).expect("serialisable")
        })
        .collect()
}

/// Returns how many inputs ran, and how often each (protocol, op) came out.
fn fuzz_for(duration: Duration, seed: u64) -> (u64, BTreeMap<String, u64>) {
    let mut rng = Rng(seed | 1);
    let commands = commands();
    let captures: Vec<Chunks> = FIXTURES.iter().map(|f| load(f).chunks).collect();
    let deadline = Instant::now() + duration;
    let mut runs = 0;
    let mut seen = BTreeMap::new();
    while Instant::now() < deadline {
        let mut chunks: Chunks = match rng.below(3) {
            0 => captures[rng.below(captures.len())].clone(),
            1 => (0..rng.below(40))
                .map(|_| (rng.chance(2), random_sftp_packet(&mut rng)))
                .collect(),
            _ => (0..rng.below(20))
                .map(|_| {
                    (
                        rng.chance(2),
                        (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
                    )
                })
                .collect(),
        };
        if rng.chance(4) {
            // Keep a valid start (sftp INIT/VERSION or the scp go-ahead) so decoding gets deep.
            chunks.insert(0, (false, vec![0]));
        }
        mutate(&mut rng, &mut chunks);
        for cmd in &commands {
            run_one(&mut rng, cmd, &chunks, &mut seen);
        }
        runs += 1;
    }
    (runs, seen)
}

#[test]
fn decoders_survive_random_and_mutated_traffic() {
    let (runs, seen) = fuzz_for(Duration::from_secs(3), 0x5e55_7ec0);
    assert!(runs > 0);
    // The mutated captures reach deep into each protocol.
    for op in [
        "sftp open",
        "sftp rename",
        "scp file",
        "scp dir",
        "sftp decode_stopped",
        "scp error",
    ] {
        assert!(
            seen.get(op).copied().unwrap_or(0) > 0,
            "no {op} in {seen:?}"
        );
    }
}

#[test]
#[ignore = "long run: set SESSREC_FUZZ_SECS"]
fn decoders_survive_random_and_mutated_traffic_long() {
    let secs = std::env::var("SESSREC_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let seed = std::env::var("SESSREC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("fuzzing {secs} s with seed {seed}");
    let (runs, seen) = fuzz_for(Duration::from_secs(secs), seed);
    eprintln!("{runs} inputs, each through every decoder; events: {seen:?}");
}

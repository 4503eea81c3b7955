//! Throughput of a forwarded connection through the bastion: the recorder's connect channel
//! (`ProxyCommand='ssh bastion connect %h %p'`, spliced; and with `record_payload`, copied
//! into a PCAP file) against sshd's own unrecorded forwarding (`ssh -W`, what `ssh -J` runs)
//! and a direct connection. See README.md; never run by CI, never asserted by a test.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sessrec_tests::*;

const CIPHER: &str = "Ciphers=aes128-gcm@openssh.com";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn proxy(bastion: &SshLogin, how: &str) -> String {
    let mut parts = vec!["ssh".to_string(), "-o".into(), CIPHER.into()];
    parts.extend(bastion.ssh_args());
    match how {
        "connect" => parts.extend(["-T".into(), bastion.destination(), "connect %h %p".into()]),
        _ => parts.extend(["-W".into(), "%h:%p".into(), bastion.destination()]),
    }
    format!("ProxyCommand={}", parts.join(" "))
}

/// Seconds to push `data` through `ssh [-o ProxyCommand=…] target 'cat >/dev/null'`.
fn push(target: &SshLogin, proxy: Option<&str>, data: &Path) -> f64 {
    let mut extra = vec!["-T", "-o", CIPHER];
    if let Some(p) = proxy {
        extra.extend(["-o", p]);
    }
    let began = Instant::now();
    let out = target
        .ssh_command(&extra)
        .arg("cat >/dev/null")
        .stdin(Stdio::from(File::open(data).unwrap()))
        .output()
        .expect("ssh");
    assert!(out.status.success(), "{out:?}");
    began.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let size_mib = arg("--size-mib", 1024);
    let runs = arg("--runs", 5) as usize;
    ensure_sessrec_user();
    let installed = Installed::recorder_and_pam();
    let target = PrivateSshd::start_default();
    let target_user = TestUser::new("xfwdt", Path::new("/bin/sh"));
    let jumper = TestUser::new("xfwdj", installed.shell());
    let keeper = TestUser::new("xfwdk", installed.shell());
    let to = format!("to = [\"127.0.0.1:{}\"]", target.port());
    let forward = format!(
        "[[forward.allow]]\nusers = [\"{}\"]\n{to}\n[[forward.allow]]\nusers = [\"{}\"]\n{to}\nrecord_payload = true\n",
        jumper.name(),
        keeper.name()
    );
    let builder = PrivateSshd::builder();
    let tree = RecordTree::new(&format!(
        "min_free_mb = 1\n[policy]\nservices = [\"{}\"]\n[recorder]\nshell = \"/bin/bash\"\nmax_channel_bytes = 1099511627776\n[budget]\nuser_mb_per_day = 0\n{forward}",
        builder.service()
    ));
    let dropin = format!(
        "Match User {}\n    AllowTcpForwarding local\n    PermitOpen 127.0.0.1:{}",
        jumper.name(),
        target.port()
    );
    let bastion = builder
        .match_block(&dropin)
        .recorded_by(&installed, tree.config_path())
        .start();
    let data =
        Path::new("/dev/shm").join(format!("srt-xfwd-{}", sessrec_tests::util::random_hex(6)));
    let made = Command::new("head")
        .arg("-c")
        .arg(format!("{size_mib}M"))
        .arg("/dev/urandom")
        .stdout(File::create(&data).unwrap())
        .status()
        .unwrap();
    assert!(made.success());

    let to_target = target.login(&target_user);
    let via_w = proxy(&bastion.login(&jumper), "-W");
    let via_connect = proxy(&bastion.login(&jumper), "connect");
    let via_pcap = proxy(&bastion.login(&keeper), "connect");
    let variants: [(&str, Option<&str>); 4] = [
        ("direct", None),
        ("ssh -W (sshd, unrecorded data path)", Some(&via_w)),
        ("connect channel (spliced)", Some(&via_connect)),
        ("connect channel + PCAP", Some(&via_pcap)),
    ];
    // Warm-up, uncounted.
    for (_, p) in &variants {
        push(&to_target, *p, &data);
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for round in 0..runs {
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            times[i].push(push(&to_target, variants[i].1, &data));
            // The PCAP of the last run goes, so /var/log does not fill.
            for session in tree.sessions() {
                for entry in std::fs::read_dir(&session).into_iter().flatten().flatten() {
                    if entry.path().extension().is_some_and(|e| e == "pcap") {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_file(&data);
    println!("{size_mib} MiB through the bastion, {runs} rounds, medians:");
    let mb = (size_mib << 20) as f64 / 1e6;
    let baseline = median(times[1].clone());
    for (i, (name, _)) in variants.iter().enumerate() {
        let t = median(times[i].clone());
        println!(
            "  {name:40} {:7.1} MB/s  ({:5.1} % of ssh -W)",
            mb / t,
            100.0 * baseline / t
        );
    }
    // Per-round ratio of the spliced connect channel to ssh -W.
    let ratios: Vec<f64> = times[1].iter().zip(&times[2]).map(|(w, c)| w / c).collect();
    println!(
        "  connect/-W per round: median {:.3}, rounds {:?}",
        median(ratios.clone()),
        ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_millis(100));
}

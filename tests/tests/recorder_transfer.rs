//! The recorder's transfer seam: an allow-listed sftp-server command runs directly, each
//! operation becomes a `transfer` line, and the payload stays out of the record.

mod recorder_support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use recorder_support::*;
use sessrec_tests::*;

const CONFIG: &str = "min_free_mb = 1\n[recorder]\nshell = \"/bin/bash\"\n";

#[test]
fn sftp_channel_records_operations_not_payload() {
    require_e2e!("sftp");
    let rig = Rig::new("rec-sftp", CONFIG);
    let home = rig.user.home().to_path_buf();
    let payload: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let src = home.join("upload.bin");
    std::fs::write(&src, &payload).unwrap();
    std::os::unix::fs::chown(&src, Some(rig.user.uid()), Some(rig.user.gid())).unwrap();
    let batch = home.join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {0}/upload.bin {0}/copy.bin\nrename {0}/copy.bin {0}/moved.bin\nget {0}/moved.bin {0}/back.bin\n",
            home.display()
        ),
    )
    .unwrap();
    let server = format!(
        "{} -c /usr/lib/openssh/sftp-server",
        rig.installed.shell().display()
    );
    let out = Command::new("sftp")
        .arg("-b")
        .arg(&batch)
        .arg("-D")
        .arg(&server)
        .env_clear()
        .envs(rig.env())
        .current_dir(&home)
        .uid(rig.user.uid())
        .gid(rig.user.gid())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sftp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(home.join("back.bin")).unwrap() == payload);

    let channel = rig.finished_channel(1);
    let start = event(&channel, "channel.start");
    assert_eq!(start["kind"], "transfer");
    assert_eq!(start["protocol"], "sftp");
    let transfers = events(&channel, "transfer");
    let upload = transfers
        .iter()
        .find(|t| t["op"] == "open" && t["direction"] == "upload")
        .unwrap_or_else(|| panic!("no upload in {transfers:?}"));
    assert!(upload["path"].as_str().unwrap().ends_with("/copy.bin"));
    assert_eq!(upload["bytes_written"], payload.len() as u64);
    assert!(transfers.iter().any(|t| t["op"] == "rename"));
    assert!(transfers
        .iter()
        .any(|t| t["op"] == "open" && t["direction"] == "download"));
    let size = std::fs::metadata(&channel).unwrap().len();
    assert!(size < 64 * 1024, "record of {size} bytes holds payload");
    assert!(stream_bytes(&channel, Stream::Input).is_empty());
    let end = event(&channel, "channel.end");
    assert!(end["bytes_in"].as_u64().unwrap() > payload.len() as u64);
}

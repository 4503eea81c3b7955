//! A whole session: the first two bytes split the input into a timing file and one stream
//! used for all five streams. Delivered bytes never exceed what the timing file announced,
//! times never go backwards.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sudo_iolog_import::iolog::session::{replay_from, Decoded, ReplayMode};
use sudo_iolog_import::iolog::StreamReader;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let split = (usize::from(data[0]) << 8 | usize::from(data[1])).min(data.len() - 2);
    let (timing, stream) = data[2..].split_at(split);
    let complete = data[0] & 1 == 0;
    let mode = ReplayMode {
        skip: u64::from(data[0] >> 4),
        live: data[0] & 2 != 0,
        max_bytes: (data[0] & 8 != 0).then_some(u64::from(data[1])),
    };
    let Ok(timing) = StreamReader::new(timing) else {
        return;
    };
    let mut streams: [Option<StreamReader<&[u8]>>; 5] = Default::default();
    for s in streams.iter_mut() {
        *s = StreamReader::new(stream).ok();
    }
    let mut last = 0u64;
    let mut delivered = 0u64;
    let mut sink = |d: Decoded<'_>, _skipped: bool| -> std::io::Result<()> {
        let at = match d {
            Decoded::Io { at_ns, data, .. } => {
                delivered += data.len() as u64;
                at_ns
            }
            Decoded::Winsize { at_ns, .. } | Decoded::Suspend { at_ns, .. } => at_ns,
        };
        assert!(at >= last);
        last = at;
        Ok(())
    };
    if let Ok(outcome) = replay_from(timing, &mut streams, complete, mode, &mut sink) {
        assert_eq!(outcome.total_bytes(), delivered);
        assert_eq!(outcome.end_ns, last.max(outcome.end_ns));
    }
});

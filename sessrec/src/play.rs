//! `sessrec play`: replays recorded output in the operator's terminal, filtered to drawing
//! sequences, with speed, idle limit, pause/step/quit keys, a start offset and live follow.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};

use crate::context::{exit, CmdResult, Context, Failure};
use crate::playlist::{cues, Cue, Timed};
use crate::records::{target_files, RecordFile};
use crate::sanitize::Sanitizer;

/// Puts the operator's terminal into raw mode for single keys; restores it on drop.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enable() -> Option<RawMode> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // Keep output processing so "\n" still returns the carriage in banners.
        raw.output_flags = saved.output_flags;
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    Pause,
    Step,
    Quit,
    Faster,
    Slower,
}

/// Waits up to `timeout` for a key (none when stdin is not a terminal in raw mode).
fn wait_key(keys: bool, timeout: Duration) -> Option<Key> {
    if !keys {
        std::thread::sleep(timeout);
        return None;
    }
    let stdin = io::stdin();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    match poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    ) {
        Ok(n) if n > 0 => {
            let mut b = [0u8; 1];
            match stdin.lock().read(&mut b) {
                Ok(1) => match b[0] {
                    b' ' => Some(Key::Pause),
                    b'.' => Some(Key::Step),
                    b'q' | b'Q' | 0x03 | 0x1b => Some(Key::Quit),
                    b'+' | b'=' => Some(Key::Faster),
                    b'-' => Some(Key::Slower),
                    _ => None,
                },
                _ => Some(Key::Quit),
            }
        }
        _ => None,
    }
}

/// The operator's terminal, shared with the signal watcher: every chunk is written under this
/// lock, so the restore sequence comes after the last whole chunk and nothing comes after it.
#[derive(Default)]
struct Screen {
    closed: bool,
    /// What puts the terminal back, given everything written so far.
    restore: Vec<u8>,
}

type SharedScreen = Arc<Mutex<Screen>>;

fn lock(screen: &SharedScreen) -> MutexGuard<'_, Screen> {
    screen.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes to fd 1 without the standard output lock (which the player holds).
fn write_fd1(mut data: &[u8]) {
    let stdout = io::stdout();
    while !data.is_empty() {
        match nix::unistd::write(stdout.as_fd(), data) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// On SIGINT, SIGTERM, SIGQUIT or SIGHUP (Ctrl-C when keys are not read, `kill`): writes the
/// restore sequence, gives the terminal its settings back, and exits with 128 + the signal.
/// The signals are blocked in every thread and taken by this one with sigwait, so no handler
/// (and no unsafe code) is needed.
fn watch_signals(screen: SharedScreen, saved: Option<Termios>) {
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGQUIT,
        Signal::SIGHUP,
    ] {
        set.add(sig);
    }
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        let Ok(sig) = set.wait() else {
            return;
        };
        let mut screen = lock(&screen);
        if !screen.closed {
            screen.closed = true;
            write_fd1(&screen.restore);
        }
        if let Some(saved) = &saved {
            let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
        std::process::exit(128 + sig as i32);
    });
}

struct Player<'a> {
    out: io::StdoutLock<'a>,
    screen: SharedScreen,
    speed: f64,
    idle_limit_us: Option<u64>,
    from_us: u64,
    keys: bool,
    paused: bool,
    /// Recording time already shown.
    shown_us: u64,
}

enum Flow {
    Go,
    Quit,
}

impl Player<'_> {
    /// Waits until recording time `at_us` is due (scaled, idle-limited), handling keys.
    fn wait_until(&mut self, at_us: u64) -> Flow {
        if at_us < self.from_us {
            return Flow::Go;
        }
        let mut gap = at_us.saturating_sub(self.shown_us.max(self.from_us));
        if let Some(limit) = self.idle_limit_us {
            gap = gap.min(limit);
        }
        let due = Duration::from_micros((gap as f64 / self.speed) as u64);
        let start = Instant::now();
        loop {
            if self.paused {
                match wait_key(self.keys, Duration::from_millis(500)) {
                    Some(Key::Pause) => {
                        self.paused = false;
                        return self.wait_until(at_us);
                    }
                    Some(Key::Step) => break,
                    Some(Key::Quit) => return Flow::Quit,
                    _ => continue,
                }
            }
            let elapsed = start.elapsed();
            if elapsed >= due {
                break;
            }
            match wait_key(self.keys, (due - elapsed).min(Duration::from_millis(200))) {
                Some(Key::Pause) => self.paused = true,
                Some(Key::Step) => {
                    self.paused = true;
                    break;
                }
                Some(Key::Quit) => return Flow::Quit,
                Some(Key::Faster) => self.speed = (self.speed * 2.0).min(256.0),
                Some(Key::Slower) => self.speed = (self.speed / 2.0).max(1.0 / 64.0),
                None => {}
            }
        }
        self.shown_us = at_us;
        Flow::Go
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let screen = lock(&self.screen);
        if screen.closed {
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.out.write_all(data)?;
        self.out.flush()
    }

    /// Filters recorded output and shows it; the restore sequence follows what it set.
    fn show(&mut self, sanitizer: &mut Sanitizer, data: &[u8]) -> io::Result<()> {
        let mut clean = Vec::with_capacity(data.len());
        sanitizer.push(data, &mut clean);
        let mut screen = lock(&self.screen);
        if screen.closed {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let restore = sanitizer.restore_sequence();
        if screen.restore != restore {
            screen.restore = restore;
        }
        self.out.write_all(&clean)?;
        self.out.flush()
    }

    /// Writes the restore sequence (once) and closes the screen.
    fn finish(&mut self) {
        let mut screen = lock(&self.screen);
        if !screen.closed {
            screen.closed = true;
            let _ = self.out.write_all(&screen.restore);
            let _ = self.out.flush();
        }
    }
}

pub fn run(ctx: &Context) -> CmdResult {
    let speed: f64 = match ctx.args.value("--speed") {
        None => 1.0,
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0 && *v <= 1000.0)
            .ok_or_else(|| {
                Failure::usage(format!(
                    "--speed {:?}: give a factor above 0 and at most 1000 (0.5 is half speed; at 0 nothing would ever be shown, to pause press space)",
                    crate::escape::escape_control(s)
                ))
            })?,
    };
    let idle_limit_us = ctx.duration_arg("--idle-limit")?.map(|v| v.max(0) as u64);
    let from_us = ctx
        .duration_arg("--from")?
        .map(|v| v.max(0) as u64)
        .unwrap_or(0);
    let raw = ctx.args.flag("--raw");
    let (session, files) =
        target_files(&ctx.tree, &ctx.args.positional[0]).map_err(Failure::error)?;
    if from_us > 0 && !ctx.args.flag("--follow") {
        // Starting past the end would show the whole recording at once and stop: say so.
        let end = cues(&files, files.len() > 1)
            .map(|t| t.at_us)
            .max()
            .unwrap_or(0);
        if from_us > end {
            return Err(Failure::usage(format!(
                "--from {}: past the end of the recording, which is {} long",
                crate::timespec::format_duration(from_us as i64),
                crate::timespec::format_duration(end as i64)
            )));
        }
    }
    let stdout = io::stdout();
    let interactive = io::IsTerminal::is_terminal(&io::stdin());
    let guard = if interactive { RawMode::enable() } else { None };
    let mut sanitizer = Sanitizer::with_raw(raw);
    let screen = SharedScreen::new(Mutex::new(Screen {
        closed: false,
        restore: sanitizer.restore_sequence(),
    }));
    watch_signals(screen.clone(), guard.as_ref().map(|g| g.saved.clone()));
    let mut player = Player {
        out: stdout.lock(),
        screen,
        speed,
        idle_limit_us,
        from_us,
        keys: guard.is_some(),
        paused: false,
        shown_us: 0,
    };
    if ctx.args.flag("--follow") {
        // Like `tail -f`: what is recorded so far at once, then live output as it comes.
        let last = files
            .last()
            .cloned()
            .ok_or_else(|| Failure::error("nothing to follow"))?;
        let keys = player.keys;
        let r = crate::follow::follow(
            &mut |data: &[u8]| player.show(&mut sanitizer, data),
            &last,
            &session,
            &ctx.host,
            keys,
        );
        player.finish();
        drop(guard);
        return match r {
            Ok(()) => Ok(exit::OK),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(exit::OK),
            Err(e) => Err(Failure::error(e.to_string())),
        };
    }
    let result = play_files(&mut player, &files, &mut sanitizer);
    // Quit, end, or error alike: the terminal gets its modes back first.
    player.finish();
    if let Err(e) = result {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(Failure::error(e.to_string()));
        }
    }
    drop(guard);
    Ok(exit::OK)
}

/// Plays every cue until the end or until the operator quits.
fn play_files(
    p: &mut Player<'_>,
    files: &[RecordFile],
    sanitizer: &mut Sanitizer,
) -> io::Result<()> {
    let multiple = files.len() > 1;
    for Timed { at_us, cue } in cues(files, multiple) {
        match cue {
            Cue::Output(data) => {
                if let Flow::Quit = p.wait_until(at_us) {
                    return Ok(());
                }
                p.show(sanitizer, &data)?;
            }
            Cue::Banner(text) => {
                if let Flow::Quit = p.wait_until(at_us) {
                    return Ok(());
                }
                p.write(&sanitizer.restore_sequence())?;
                p.write(format!("\r\n\x1b[7m{text}\x1b[0m\r\n").as_bytes())?;
            }
            Cue::Damaged(d) => {
                p.write(format!("\r\n\x1b[7m[damaged record: {d}]\x1b[0m\r\n").as_bytes())?
            }
            Cue::Input { .. } | Cue::Resize { .. } | Cue::Exit(_) => {}
        }
    }
    Ok(())
}

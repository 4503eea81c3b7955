//! The screen size a view emulates. A record's sizes come from the recorded terminal, which the
//! recorded user controls: 0×0 (a pty no one sized) or 1 row would make the emulator panic, and 65535×65535
//! would make it allocate gigabytes. Views emulate a size clamped to what a real screen shows.
#![forbid(unsafe_code)]

/// Widest and tallest screen emulated; larger recorded sizes are shown cut to this.
pub const MAX_COLS: u16 = 1000;
pub const MAX_ROWS: u16 = 500;

/// Smallest screen emulated: the emulator needs room for a double-width character on a line
/// and a row to scroll from.
pub const MIN_COLS: u16 = 2;
pub const MIN_ROWS: u16 = 2;

/// `(cols, rows)` as the emulator gets them: at least `MIN_COLS`×`MIN_ROWS`, at most `MAX_COLS`×`MAX_ROWS`.
pub fn emulated(cols: u32, rows: u32) -> (u16, u16) {
    let clamp = |n: u32, min: u16, max: u16| n.clamp(min.into(), max.into()) as u16;
    (
        clamp(cols, MIN_COLS, MAX_COLS),
        clamp(rows, MIN_ROWS, MAX_ROWS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsized_and_huge_terminals_become_sizes_an_emulator_can_hold() {
        assert_eq!(emulated(0, 0), (MIN_COLS, MIN_ROWS));
        assert_eq!(emulated(u32::MAX, u32::MAX), (MAX_COLS, MAX_ROWS));
        assert_eq!(emulated(80, 24), (80, 24));
    }
}

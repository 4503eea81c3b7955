//! The arguments of an `exec` line of `audit.jsonl` (and of a `sudo.start` line, which carries
//! its command's the same way), whole and exact, whichever form the writer chose: `argv` (a list, when every argument is UTF-8 and fits the line) or `cmdline` (the
//! arguments joined by NUL, as a long field with `command.part` lines after it).
//!
//! Writers call [`write`]; readers call [`read`] with the lines that follow the exec line.
#![forbid(unsafe_code)]

use std::io;

use serde_json::{Map, Value};

use crate::command::{assemble_field, Completeness};
use crate::schema::{exec, EventBody, Exec};
use crate::writer::RecordWriter;

/// The arguments of one exec, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecArgs {
    /// Each argument's exact bytes.
    pub args: Vec<Vec<u8>>,
    /// Whether the record holds them all (`command.part` lines may be missing).
    pub completeness: Completeness,
}

impl ExecArgs {
    /// The arguments as text, invalid UTF-8 as U+FFFD; views escape them before display.
    pub fn lossy(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    /// How many `command.part` lines follow the exec line for its arguments.
    pub fn parts_after(line: &Map<String, Value>) -> usize {
        line.get(&format!("{}{}", exec::cmdline, crate::schema::PARTS_SUFFIX))
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize
    }
}

/// The bytes of `args` joined by NUL: the `cmdline` form. Arguments cannot contain NUL (they
/// are C strings), so the join is lossless.
pub fn join(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(args.iter().map(|a| a.len() + 1).sum());
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(a);
    }
    out
}

/// The list form of `args`, when every argument is UTF-8.
pub fn as_text(args: &[Vec<u8>]) -> Option<Vec<String>> {
    args.iter()
        .map(|a| std::str::from_utf8(a).ok().map(str::to_string))
        .collect()
}

/// Writes `event` with `args` whole: as the `argv` list when every argument is UTF-8 and the
/// line fits, else as the long field `cmdline` (with `command.part` lines as needed).
pub fn write(writer: &mut RecordWriter, mut event: Exec, args: &[Vec<u8>]) -> io::Result<()> {
    event.argc.get_or_insert(args.len() as u64);
    event.cmdline = None;
    write_args(writer, event, args, |e| &mut e.argv, exec::cmdline)
}

/// Writes `event` (an `exec` or `sudo.start`) with `args` whole: in the list `argv` (reached
/// through `argv`) when every argument is UTF-8 and the line fits, else as the long field
/// `cmdline_key` (with `command.part` lines as needed). [`read`] reads either form back.
pub fn write_args<E: EventBody>(
    writer: &mut RecordWriter,
    mut event: E,
    args: &[Vec<u8>],
    argv: impl Fn(&mut E) -> &mut Option<Vec<String>>,
    cmdline_key: &str,
) -> io::Result<()> {
    if let Some(list) = as_text(args) {
        *argv(&mut event) = Some(list);
        if writer.fits(&event)? {
            return writer.write(&event);
        }
    }
    *argv(&mut event) = None;
    writer.write_with_long_field(&event, cmdline_key, &join(args))
}

/// The arguments of an exec or sudo.start line (`line`, without or with its header; both name
/// them `argv` and `cmdline`), completed from the `command.part` lines that follow it. `None`
/// when the line holds no arguments.
pub fn read<'a>(
    line: &Map<String, Value>,
    following: impl IntoIterator<Item = &'a Map<String, Value>>,
) -> Option<ExecArgs> {
    if let Some(Value::Array(list)) = line.get(exec::argv) {
        let args = list
            .iter()
            .map(|v| v.as_str().unwrap_or_default().as_bytes().to_vec())
            .collect();
        return Some(ExecArgs {
            args,
            completeness: Completeness::Whole,
        });
    }
    let joined = assemble_field(line, following, exec::cmdline)?;
    Some(ExecArgs {
        args: joined
            .bytes
            .split(|b| *b == 0)
            .map(<[u8]>::to_vec)
            .collect(),
        completeness: joined.completeness,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn reads_both_forms() {
        let list = map(serde_json::json!({"type": "exec", "argv": ["ls", "-l"]}));
        assert_eq!(read(&list, []).unwrap().lossy(), ["ls", "-l"]);
        let joined = map(serde_json::json!({
            "type": "exec", "cmdline_b64": "bHMA/w==", "cmdline_bytes": 4,
        }));
        let args = read(&joined, []).unwrap();
        assert_eq!(args.args, vec![b"ls".to_vec(), b"\xff".to_vec()]);
        assert!(matches!(args.completeness, Completeness::Whole));
        assert_eq!(join(&args.args), b"ls\0\xff");
        assert!(read(&map(serde_json::json!({"type": "exec"})), []).is_none());
    }

    #[test]
    fn sudo_start_names_its_arguments_as_exec_does() {
        use crate::schema::sudo_start;
        assert_eq!(sudo_start::argv, exec::argv);
        assert_eq!(sudo_start::cmdline, exec::cmdline);
    }
}

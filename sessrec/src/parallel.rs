//! Work over many sessions on every core, with results in the order of the input (views
//! print them as one thread would).
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Items worked on together before their results are handed on in order.
const BLOCK: usize = 256;

/// How many threads views use: the machine's cores.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f` of every item, in the items' order, computed on every core.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else {
            break;
        };
        let r = f(item);
        *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    };
    let threads = workers().min(items.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    slots
        .into_iter()
        .zip(items)
        .map(|(slot, item)| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| f(item))
        })
        .collect()
}

/// `f` of every item computed on every core a block at a time, each result handed to `sink`
/// in the items' order (output starts before the last item is done); stops at `sink`'s
/// first error.
pub fn for_each_ordered<T: Sync, R: Send, E>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
    mut sink: impl FnMut(&T, R) -> Result<(), E>,
) -> Result<(), E> {
    for block in items.chunks(BLOCK) {
        for (item, r) in block.iter().zip(map(block, &f)) {
            sink(item, r)?;
        }
    }
    Ok(())
}

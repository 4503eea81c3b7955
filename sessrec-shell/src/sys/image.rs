//! The recorder's program image in memory: its read-only pages (code, constants) are mapped
//! one by one as they are used, not in the kernel's fault-around windows.
//!
//! A fault on a file-backed page maps every cached page of the same mapping within a 64 KiB
//! window around it (`fault_around_bytes`), and `MADV_RANDOM` does not change that. The code a
//! recorder runs is spread thinly over its own text and libc's, so nearly all of both became
//! resident: about 3.6 MB of a 4.3 MB peak, of which about 1.7 MB is ever used. The window
//! never reaches past the mapping, so giving every page a mapping of its own (every second
//! page gets `MADV_DONTDUMP`, so no two neighbours can merge; the recorder never dumps core,
//! its `RLIMIT_CORE` is 0) and then dropping the pages mapped so far leaves only the pages
//! used afterwards resident. The pages are the page cache's, shared with every other process:
//! this changes what each recorder maps, not what the host holds. The price is about a
//! thousand more mappings per recorder (about 200 kB of kernel memory) and about 5 ms of CPU
//! at start (the splitting, faults one page at a time, and `fork`, `execve` and the Rust
//! runtime's read of `/proc/self/maps` going through more mappings); see bench/recorder.
//!
//! The loader and libc's start-up make much of the image resident before `main`, and the Rust
//! runtime's start-up adds more in whole windows; so this runs as a constructor of the program
//! (after libc's, before the runtime's start-up and `main`).
//!
//! Only pages still backed by the file are dropped: a page written since it was mapped (a
//! debugger's breakpoint, a uprobe of a tracing or security tool) is anonymous and stays, as
//! `/proc/self/pagemap` tells. Without that file nothing is dropped.

use std::ffi::{c_void, CStr};
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The objects whose read-only segments are handled: the program itself (empty name), libc
/// and the dynamic loader. Known to have no text relocations, so their read-only pages are
/// never written and can be dropped and faulted in again from the file at any time.
fn handled(name: &CStr) -> bool {
    let name = name.to_bytes();
    if name.is_empty() {
        return true;
    }
    let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    base.starts_with(b"libc.so.") || base.starts_with(b"ld-linux")
}

/// Page ranges `[start, end)` of read-only segments found, at most `MAX_RANGES`.
const MAX_RANGES: usize = 16;

struct Ranges {
    found: [(usize, usize); MAX_RANGES],
    len: usize,
    page: usize,
}

/// `dl_iterate_phdr` callback: records the page ranges of the handled objects' loadable,
/// non-writable segments that share no page with a writable segment.
unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> libc::c_int {
    // SAFETY: the loader passes a valid `dl_phdr_info` for the call's duration, and `data`
    // is the `Ranges` that `map_image_by_page` passed, borrowed by nothing else meanwhile.
    let (info, ranges) = unsafe { (&*info, &mut *data.cast::<Ranges>()) };
    if info.dlpi_name.is_null() || info.dlpi_phdr.is_null() {
        return 0;
    }
    // SAFETY: a non-null `dlpi_name` is a NUL-terminated string owned by the loader.
    if !handled(unsafe { CStr::from_ptr(info.dlpi_name) }) {
        return 0;
    }
    // SAFETY: `dlpi_phdr` points at `dlpi_phnum` program headers of the loaded object.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
    let page = ranges.page;
    let pages_of = |h: &libc::Elf64_Phdr| {
        let start = info.dlpi_addr as usize + h.p_vaddr as usize;
        let end = start + h.p_memsz as usize;
        (start & !(page - 1), (end + page - 1) & !(page - 1))
    };
    let loads = headers.iter().filter(|h| h.p_type == libc::PT_LOAD);
    for h in loads.clone().filter(|h| h.p_flags & libc::PF_W == 0) {
        let (start, end) = pages_of(h);
        let shares_page_with_writable = loads
            .clone()
            .filter(|w| w.p_flags & libc::PF_W != 0)
            .map(pages_of)
            .any(|(ws, we)| ws < end && start < we);
        if start < end && !shares_page_with_writable && ranges.len < MAX_RANGES {
            ranges.found[ranges.len] = (start, end);
            ranges.len += 1;
        }
    }
    0
}

/// Pages handled by the constructor ([`map_image_at_start`]); 0 if it did not run.
static PAGES_AT_START: AtomicUsize = AtomicUsize::new(0);

/// Runs before `main`: the program's `.init_array`, called after libc's constructors.
#[used]
#[link_section = ".init_array"]
static MAP_IMAGE_AT_START: extern "C" fn() = map_image_at_start;

extern "C" fn map_image_at_start() {
    PAGES_AT_START.store(map_image_by_page(), Ordering::Relaxed);
}

/// Pages the constructor handled before `main` (0 if it did not run).
pub fn image_mapped_at_start() -> usize {
    PAGES_AT_START.load(Ordering::Relaxed)
}

/// Gives every read-only page of the program, libc and the loader a mapping of its own and
/// drops those still backed by the file; from then on a page becomes resident only when used.
/// Best effort: a page that cannot be split off or dropped stays as it was (the program runs
/// the same either way). Returns the number of pages handled. Neither allocates nor uses
/// anything of the Rust runtime (it runs before the runtime starts).
pub fn map_image_by_page() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as usize,
        _ => return 0,
    };
    // SAFETY: a constant NUL-terminated path; the descriptor returned is owned below.
    let fd = unsafe {
        libc::open(
            c"/proc/self/pagemap".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return 0;
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let pagemap = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ranges = Ranges {
        found: [(0, 0); MAX_RANGES],
        len: 0,
        page,
    };
    // SAFETY: `collect` matches the callback type and only touches `ranges`, which outlives
    // the call.
    unsafe { libc::dl_iterate_phdr(Some(collect), (&raw mut ranges).cast()) };
    // SAFETY: pidfd_open on this process; the descriptor returned is owned below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    // SAFETY: a descriptor just opened and owned by nothing else.
    let mut this_process = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd as i32) });
    let mut pages = 0;
    for &(start, end) in &ranges.found[..ranges.len] {
        split_pages(&mut this_process, start..end, page);
        // SAFETY: the range is a read-only private file mapping of an object without text
        // relocations, so its pages are the file's unless written since (checked per page).
        pages += unsafe { drop_file_pages(&pagemap, start..end, page) };
    }
    pages
}

/// Gives every second page of `range` `MADV_DONTDUMP`, so that no two neighbouring pages can
/// merge into one mapping. In one process_madvise(2) call per `BATCH` pages where the kernel
/// takes any advice for the calling process (Linux 6.13 and later), else one madvise(2) per
/// page (and `this_process` is forgotten, not tried again).
fn split_pages(this_process: &mut Option<OwnedFd>, range: Range<usize>, page: usize) {
    const BATCH: usize = 512;
    let mut batch = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    let mut odd = range.start + page;
    while odd < range.end {
        let mut n = 0;
        while n < BATCH && odd < range.end {
            batch[n] = libc::iovec {
                iov_base: odd as *mut c_void,
                iov_len: page,
            };
            n += 1;
            odd += 2 * page;
        }
        let done = match this_process {
            // SAFETY: `batch[..n]` are pages of a mapped read-only segment; MADV_DONTDUMP
            // changes only whether they go into a core dump.
            Some(fd) => match unsafe {
                libc::syscall(
                    libc::SYS_process_madvise,
                    fd.as_raw_fd(),
                    batch.as_ptr(),
                    n,
                    libc::MADV_DONTDUMP,
                    0,
                )
            } {
                advised if advised >= 0 => advised as usize / page,
                _ => {
                    *this_process = None;
                    0
                }
            },
            None => 0,
        };
        for left in &batch[done.min(n)..n] {
            // SAFETY: as above, one page.
            unsafe { libc::madvise(left.iov_base, page, libc::MADV_DONTDUMP) };
        }
    }
}

/// Entry bits of `/proc/PID/pagemap` (see the kernel's `admin-guide/mm/pagemap`).
const PAGEMAP_PRESENT: u64 = 1 << 63;
const PAGEMAP_SWAPPED: u64 = 1 << 62;
const PAGEMAP_FILE_OR_SHARED: u64 = 1 << 61;

/// Drops the pages of `range` that are not anonymous (present and not the file's, or
/// swapped): they are faulted in again from the file when next used. Stops at the first page
/// whose entry cannot be read. Returns the number of pages looked at.
///
/// # Safety
/// `range` must be page-aligned and lie within private file mappings of this process whose
/// file-backed pages are never relied on to differ from the file.
unsafe fn drop_file_pages(pagemap: &OwnedFd, range: Range<usize>, page: usize) -> usize {
    let mut entries = [0u64; 256];
    let mut run_start = range.start;
    let mut addr = range.start;
    let drop_run = |from: usize, to: usize| {
        if from < to {
            // SAFETY: [from, to) lies in `range` and holds no anonymous page (the caller's
            // contract and the pagemap check).
            unsafe { libc::madvise(from as *mut c_void, to - from, libc::MADV_DONTNEED) };
        }
    };
    while addr < range.end {
        let want = ((range.end - addr) / page).min(entries.len());
        // SAFETY: `entries` has room for `want` u64 entries.
        let got = unsafe {
            libc::pread(
                pagemap.as_raw_fd(),
                entries.as_mut_ptr().cast(),
                want * 8,
                ((addr / page) * 8) as libc::off_t,
            )
        };
        if got <= 0 || !(got as usize).is_multiple_of(8) {
            break;
        }
        for &entry in &entries[..got as usize / 8] {
            let anonymous = entry & PAGEMAP_SWAPPED != 0
                || (entry & PAGEMAP_PRESENT != 0 && entry & PAGEMAP_FILE_OR_SHARED == 0);
            if anonymous {
                drop_run(run_start, addr);
                run_start = addr + page;
            }
            addr += page;
        }
    }
    drop_run(run_start, addr);
    (addr - range.start) / page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_the_program_libc_and_the_loader_only() {
        assert!(handled(c""));
        assert!(handled(c"/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(handled(c"/lib64/ld-linux-x86-64.so.2"));
        assert!(handled(c"/lib/ld-linux-aarch64.so.1"));
        assert!(!handled(c"linux-vdso.so.1"));
        assert!(!handled(c"/lib/x86_64-linux-gnu/libgcc_s.so.1"));
        assert!(!handled(c"/usr/lib/libcrypt.so.1"));
    }

    /// Mappings of this test program's own file.
    fn own_mappings() -> usize {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_str().unwrap();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines().filter(|l| l.ends_with(exe)).count()
    }

    #[test]
    fn before_main_every_read_only_page_got_a_mapping_of_its_own() {
        // The test program links this module as the recorder does, constructor included.
        let pages = image_mapped_at_start();
        assert!(pages > 100, "{pages} pages");
        assert!(own_mappings() > 100, "{} mappings", own_mappings());
        // Doing it again changes nothing and the program runs on.
        let before = own_mappings();
        assert_eq!(map_image_by_page(), pages);
        assert_eq!(own_mappings(), before);
    }

    /// Mappings of this process that overlap `range`.
    fn mappings_in(range: Range<usize>) -> usize {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines()
            .filter_map(|l| l.split_whitespace().next()?.split_once('-'))
            .filter_map(|(a, b)| {
                Some((
                    usize::from_str_radix(a, 16).ok()?,
                    usize::from_str_radix(b, 16).ok()?,
                ))
            })
            .filter(|&(start, end)| start < range.end && range.start < end)
            .count()
    }

    #[test]
    fn every_page_gets_a_mapping_of_its_own_with_or_without_process_madvise() {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: pidfd_open on this process; owned right below.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
        assert!(pidfd >= 0);
        // SAFETY: a descriptor just opened and owned by nothing else.
        let with = Some(unsafe { OwnedFd::from_raw_fd(pidfd as i32) });
        for mut this_process in [with, None] {
            // SAFETY: a fresh private read-only mapping of 9 pages; unmapped below.
            let map = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    9 * page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(map, libc::MAP_FAILED);
            let range = map as usize..map as usize + 9 * page;
            assert_eq!(mappings_in(range.clone()), 1);
            split_pages(&mut this_process, range.clone(), page);
            assert_eq!(mappings_in(range), 9);
            // SAFETY: unmaps the mapping made above.
            unsafe { libc::munmap(map, 9 * page) };
        }
    }

    #[test]
    fn pages_written_since_mapped_are_kept_and_the_rest_come_back_from_the_file() {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let path = std::env::temp_dir().join(format!("sessrec-image-{}", std::process::id()));
        let contents: Vec<u8> = (0..4 * page).map(|i| (i / page) as u8 + b'a').collect();
        std::fs::write(&path, &contents).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // SAFETY: a fresh private mapping of 4 pages of an open file; unmapped below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED);
        let base = map.cast::<u8>();
        // Volatile: the pages change under the program's feet when dropped and faulted again.
        // SAFETY: `i` is within the 4 readable pages mapped above.
        let read = |i: usize| unsafe { base.add(i).read_volatile() };
        // SAFETY: `i` is within the 4 writable pages mapped above.
        let write = |i: usize, b: u8| unsafe { base.add(i).write_volatile(b) };
        assert_eq!(read(0), b'a');
        write(page + 1, b'X'); // what a breakpoint or uprobe does to a code page
        assert_eq!(read(2 * page), b'c');
        // SAFETY: /proc/self/pagemap, opened read-only and owned here.
        let pagemap = unsafe {
            OwnedFd::from_raw_fd(libc::open(
                c"/proc/self/pagemap".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            ))
        };
        let start = map as usize;
        // SAFETY: the range is exactly the private file mapping above.
        let looked_at = unsafe { drop_file_pages(&pagemap, start..start + 4 * page, page) };
        assert_eq!(looked_at, 4);
        let mut expected = contents.clone();
        expected[page + 1] = b'X';
        let now: Vec<u8> = (0..4 * page).map(read).collect();
        assert!(now == expected, "the written page was dropped");
        // SAFETY: unmaps the mapping made above; `bytes` is not used after this.
        unsafe { libc::munmap(map, 4 * page) };
    }
}

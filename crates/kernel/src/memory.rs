//! Cage linear memories, and forking them by copy-on-write.
//!
//! Native `fork` copies no memory: parent and child share every page until
//! one writes it. wasmtime has no such thing for two instances, so warden
//! gives every linear memory its own mapping ([`CageMemoryCreator`]) and
//! builds it here:
//!
//! * At a fork, the pages the parent wrote since its last fork are written
//!   into a new sealed memfd, and the parent's memory is re-mapped
//!   `MAP_PRIVATE` over it. The memfd is never written again.
//! * The child maps the same files the same way. Both then read the shared
//!   page cache and get private copies of the pages they write, as after a
//!   native fork.
//!
//! So a memory is a stack of frozen layers ([`Layers`]): runs of pages
//! mapped from a file, and anonymous zero pages in between. Forks copy only
//! what the parent wrote since its previous fork (found in
//! `/proc/self/pagemap`). When the layers get fragmented they are folded
//! into one file again.
//!
//! The memory of a module that can fork starts out in a file of its own,
//! mapped shared ([`share_from_file`]): its first fork then only freezes
//! that file, and copies nothing.
//!
//! wasmtime's copy-on-write initialisation of memories from the module's
//! data does not apply to host-provided memories; data segments are copied
//! in at instantiation instead, which for the programs warden runs is a few
//! kilobytes.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock};

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

/// Past this many mapped runs, or this many distinct files under them, a
/// fork folds the layers into one file, so that the mappings and open
/// files of a cage stay few whatever the program writes between forks.
const MAX_SEGMENTS: usize = 32;
const MAX_FILES: usize = 8;

/// Makes every linear memory a [`CageMemory`].
pub struct CageMemoryCreator;

// SAFETY: every memory reserves `reserved + guard` bytes (and as many
// before it), never moves, and keeps everything past its accessible size
// inaccessible, which is what wasmtime's compiled code relies on.
unsafe impl MemoryCreator for CageMemoryCreator {
    fn new_memory(
        &self,
        ty: MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        if ty.is_shared() {
            return Err("shared memories are not supported".into());
        }
        let page = page_size();
        let capacity = reserved_size_in_bytes
            .or(maximum)
            .unwrap_or(minimum)
            .max(minimum)
            .next_multiple_of(page);
        let guard = guard_size_in_bytes.next_multiple_of(page);
        CageMemory::new(minimum, capacity, guard)
            .map(|m| Box::new(m) as Box<dyn LinearMemory>)
            .map_err(|e| format!("cannot reserve a linear memory of {capacity} bytes: {e}"))
    }
}

/// One linear memory: `guard ‖ capacity ‖ guard` bytes reserved, the first
/// `size` bytes of `capacity` accessible.
struct CageMemory {
    region: NonNull<u8>,
    region_len: usize,
    base: NonNull<u8>,
    size: usize,
    capacity: usize,
    layers: Arc<Mutex<Layers>>,
}

// SAFETY: the memory is plain mapped bytes; wasmtime serialises access to
// a store's memories, and the registry entry is behind a mutex.
unsafe impl Send for CageMemory {}
unsafe impl Sync for CageMemory {}

impl CageMemory {
    fn new(size: usize, capacity: usize, guard: usize) -> io::Result<CageMemory> {
        let region_len = guard
            .checked_mul(2)
            .and_then(|g| g.checked_add(capacity))
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a fresh inaccessible reservation, nothing else mapped there.
        let region = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                region_len,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )?
        };
        let region = NonNull::new(region.cast::<u8>()).ok_or(io::ErrorKind::Other)?;
        // SAFETY: `guard` is within the reservation just made.
        let base = unsafe { region.add(guard) };
        let mut memory = CageMemory {
            region,
            region_len,
            base,
            size: 0,
            capacity,
            layers: Arc::new(Mutex::new(Layers {
                capacity,
                ..Layers::default()
            })),
        };
        memory.make_accessible(size)?;
        registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(base.as_ptr() as usize, memory.layers.clone());
        Ok(memory)
    }

    fn make_accessible(&mut self, new_size: usize) -> io::Result<()> {
        if new_size > self.capacity {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        if new_size > self.size {
            let from = self.size.next_multiple_of(page_size());
            let to = new_size.next_multiple_of(page_size());
            let layers = self.layers.lock().unwrap_or_else(|e| e.into_inner());
            match &layers.live {
                // SAFETY: [from, to) is inside this memory's reservation and
                // inside the file, which is as long as the reservation.
                Some(file) => unsafe { map_file(self.base.as_ptr(), from, to, file, true)? },
                // SAFETY: [from, to) is inside this memory's reservation.
                None if to > from => unsafe {
                    rustix::mm::mprotect(
                        self.base.as_ptr().add(from).cast(),
                        to - from,
                        MprotectFlags::READ | MprotectFlags::WRITE,
                    )?;
                },
                None => {}
            }
            self.size = new_size;
        }
        Ok(())
    }
}

impl Drop for CageMemory {
    fn drop(&mut self) {
        registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(self.base.as_ptr() as usize));
        // SAFETY: the reservation is this memory's own; wasmtime has dropped
        // every use of it.
        let _ = unsafe { rustix::mm::munmap(self.region.as_ptr().cast(), self.region_len) };
    }
}

// SAFETY: see `CageMemoryCreator`.
unsafe impl LinearMemory for CageMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.capacity
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        Ok(self.make_accessible(new_size)?)
    }

    fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }
}

/// The layers of every live memory, by base address, for [`fork_memory`].
fn registry() -> &'static Mutex<HashMap<usize, Arc<Mutex<Layers>>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<usize, Arc<Mutex<Layers>>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn layers_of(base: *mut u8) -> io::Result<Arc<Mutex<Layers>>> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(base as usize))
        .cloned()
        .ok_or_else(|| io::Error::other("not a cage memory"))
}

fn page_size() -> usize {
    rustix::param::page_size()
}

/// Makes the child's memory (at `child`, already accessible for `len`
/// bytes) a copy-on-write copy of the first `len` bytes of the parent's (at
/// `parent`).
///
/// # Safety
/// Both are cage memories, `len` bytes of each are accessible, and no
/// guest code runs in either during the call. The parent's contents do not
/// change; the child's are replaced.
pub unsafe fn fork_memory(parent: *mut u8, child: *mut u8, len: usize) -> io::Result<()> {
    let parent_layers = layers_of(parent)?;
    let child_layers = layers_of(child)?;
    let mut layers = parent_layers.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: as the caller promises.
    unsafe {
        layers.freeze(parent, len)?;
        layers.map_into(child, len)?;
    }
    child_layers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .segments
        .clone_from(&layers.segments);
    Ok(())
}

/// Moves the first `len` bytes of the memory at `base` into a file of its
/// own, mapped shared, and maps whatever it grows into from the same file:
/// for a module that can fork, whose first fork then copies nothing.
///
/// # Safety
/// `base` is a cage memory with `len` accessible bytes whose guest is not
/// running.
pub unsafe fn share_from_file(base: *mut u8, len: usize) -> io::Result<()> {
    let layers = layers_of(base)?;
    let mut layers = layers.lock().unwrap_or_else(|e| e.into_inner());
    if layers.live.is_some() || !layers.segments.is_empty() {
        return Ok(());
    }
    let page = page_size();
    let wanted = page_states(base, len / page);
    let runs = runs_of(len / page, |i| {
        wanted.as_ref().is_none_or(|s| s[i].touched())
    });
    // SAFETY: `base` has `len` accessible bytes.
    let memory = unsafe { std::slice::from_raw_parts(base, len) };
    let file = memory_file(memory, &runs, page, layers.capacity)?;
    // SAFETY: the file holds every non-zero page of the range.
    unsafe { map_file(base, 0, len, &file, true)? };
    layers.live = Some(Arc::new(file));
    Ok(())
}

/// A run of pages `[start, end)` (byte offsets into the memory) mapped
/// `MAP_PRIVATE` from `file` at the same offsets.
#[derive(Clone, Debug)]
struct Segment {
    start: usize,
    end: usize,
    file: Arc<OwnedFd>,
}

/// What a memory holds that is not its own private pages: frozen files,
/// mapped over sorted, disjoint runs (everything else is anonymous); or,
/// until its first fork, a live file it is wholly mapped from, shared.
#[derive(Debug, Default)]
struct Layers {
    capacity: usize,
    segments: Vec<Segment>,
    live: Option<Arc<OwnedFd>>,
}

impl Layers {
    /// Moves what the memory at `base` wrote since its last freeze into a
    /// new frozen file, and maps the memory over it: afterwards the first
    /// `len` bytes are exactly the layers (plus zero pages).
    ///
    /// # Safety
    /// `base` is this memory; `len` bytes of it are accessible.
    unsafe fn freeze(&mut self, base: *mut u8, len: usize) -> io::Result<()> {
        if let Some(file) = self.live.take() {
            // The memory is the file: map it private, and freeze it.
            // SAFETY: the file holds the range's current contents.
            if let Err(e) = unsafe { map_file(base, 0, len, &file, false) } {
                self.live = Some(file);
                return Err(e);
            }
            self.segments = vec![Segment {
                start: 0,
                end: len,
                file: file.clone(),
            }];
            return seal(&file);
        }
        let page = page_size();
        let pages = len / page;
        let fold = self.segments.is_empty()
            || self.segments.len() > MAX_SEGMENTS
            || self.files() > MAX_FILES;
        // A fold over files takes every page; otherwise the page map says
        // which pages to take (all of them when the host does not say).
        let states = if fold && !self.segments.is_empty() {
            None
        } else {
            page_states(base, pages)
        };
        let wanted = |i: usize| match &states {
            None => true,
            // Only anonymous memory: the pages ever touched.
            Some(s) if fold => s[i].touched(),
            // The pages written since they were mapped from a file.
            Some(s) => s[i].private(),
        };
        let runs = runs_of(pages, wanted);
        if runs.is_empty() && !fold {
            return Ok(());
        }
        // SAFETY: `base` has `len` accessible bytes.
        let memory = unsafe { std::slice::from_raw_parts(base, len) };
        let file = memory_file(memory, &runs, page, len)?;
        seal(&file)?;
        let file = Arc::new(file);
        if fold {
            // SAFETY: the whole accessible range now comes from the file,
            // which holds every non-zero page of it.
            unsafe { map_file(base, 0, len, &file, false)? };
            self.segments = vec![Segment {
                start: 0,
                end: len,
                file,
            }];
        } else {
            for &(a, b) in &runs {
                let (start, end) = (a * page, b * page);
                // SAFETY: the file holds this run's current contents.
                unsafe { map_file(base, start, end, &file, false)? };
                self.insert(Segment {
                    start,
                    end,
                    file: file.clone(),
                });
            }
        }
        Ok(())
    }

    /// Maps the layers into the memory at `base`, zero elsewhere up to `len`.
    ///
    /// # Safety
    /// `base` is a cage memory with `len` accessible bytes.
    unsafe fn map_into(&self, base: *mut u8, len: usize) -> io::Result<()> {
        // SAFETY: replaces whatever the fresh instance put there (its data
        // segments) with zero pages, then the layers on top.
        unsafe {
            rustix::mm::mmap_anonymous(
                base.cast(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::FIXED,
            )?;
            for s in &self.segments {
                map_file(base, s.start, s.end.min(len), &s.file, false)?;
            }
        }
        Ok(())
    }

    fn files(&self) -> usize {
        let mut files: Vec<*const OwnedFd> =
            self.segments.iter().map(|s| Arc::as_ptr(&s.file)).collect();
        files.sort_unstable();
        files.dedup();
        files.len()
    }

    /// Adds `new` over whatever it covers, trimming or splitting older
    /// segments; merges it with a neighbour from the same file.
    fn insert(&mut self, new: Segment) {
        let mut out = Vec::with_capacity(self.segments.len() + 2);
        for s in self.segments.drain(..) {
            if s.end <= new.start || s.start >= new.end {
                out.push(s);
                continue;
            }
            if s.start < new.start {
                out.push(Segment {
                    end: new.start,
                    ..s.clone()
                });
            }
            if s.end > new.end {
                out.push(Segment {
                    start: new.end,
                    ..s
                });
            }
        }
        let at = out.partition_point(|s| s.start < new.start);
        out.insert(at, new);
        out.dedup_by(|next, prev| {
            let joins = prev.end == next.start && Arc::ptr_eq(&prev.file, &next.file);
            if joins {
                prev.end = next.end;
            }
            joins
        });
        self.segments = out;
    }
}

/// Maps `[start, end)` of the memory at `base` from the same range of
/// `file`: private (copy-on-write) or `shared` (writes go to the file).
///
/// # Safety
/// The range is inside the memory's reservation, and the guest does not
/// run.
unsafe fn map_file(
    base: *mut u8,
    start: usize,
    end: usize,
    file: &OwnedFd,
    shared: bool,
) -> io::Result<()> {
    if end <= start {
        return Ok(());
    }
    let sharing = if shared {
        MapFlags::SHARED
    } else {
        MapFlags::PRIVATE
    };
    // SAFETY: as the caller promises; MAP_FIXED replaces only that range.
    unsafe {
        rustix::mm::mmap(
            base.add(start).cast(),
            end - start,
            ProtFlags::READ | ProtFlags::WRITE,
            sharing | MapFlags::FIXED,
            file,
            start as u64,
        )?;
    }
    Ok(())
}

/// A new memfd of `size` bytes holding the non-zero pages of `memory`
/// among `runs`, at their offsets.
fn memory_file(
    memory: &[u8],
    runs: &[(usize, usize)],
    page: usize,
    size: usize,
) -> io::Result<OwnedFd> {
    let file = rustix::fs::memfd_create(
        "warden-memory",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    rustix::fs::ftruncate(&file, size as u64)?;
    for &(a, b) in runs {
        // Zero pages stay holes: they read as zeros and cost nothing.
        let data = runs_of(b - a, |i| {
            !is_zero(&memory[(a + i) * page..(a + i + 1) * page])
        });
        for (x, y) in data {
            let (from, to) = ((a + x) * page, (a + y) * page);
            write_all_at(&file, &memory[from..to], from as u64)?;
        }
    }
    Ok(file)
}

/// Freezes `file`: nothing can write, grow or shrink it any more (there
/// must be no shared writable mapping of it left).
fn seal(file: &OwnedFd) -> io::Result<()> {
    rustix::fs::fcntl_add_seals(
        file,
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL,
    )?;
    Ok(())
}

fn write_all_at(file: &OwnedFd, mut buf: &[u8], mut at: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let n = rustix::io::pwrite(file, buf, at)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        at += n as u64;
    }
    Ok(())
}

/// Maximal runs `[a, b)` of indices below `n` where `pred` holds.
fn runs_of(n: usize, mut pred: impl FnMut(usize) -> bool) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for i in 0..n {
        match (pred(i), start) {
            (true, None) => start = Some(i),
            (false, Some(a)) => {
                runs.push((a, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(a) = start {
        runs.push((a, n));
    }
    runs
}

fn is_zero(page: &[u8]) -> bool {
    let mut words = page.chunks_exact(16);
    let body = words.all(|w| u128::from_ne_bytes(w.try_into().unwrap_or([1; 16])) == 0);
    body && words.remainder().iter().all(|b| *b == 0)
}

/// One page's entry in `/proc/self/pagemap`.
#[derive(Clone, Copy)]
struct PageState(u64);

impl PageState {
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    const FILE: u64 = 1 << 61;

    /// The page has ever been faulted in (it may hold data).
    fn touched(self) -> bool {
        self.0 & (Self::PRESENT | Self::SWAPPED) != 0
    }

    /// The page is the memory's own: written since it was last mapped from
    /// a file (or never mapped from one, and touched).
    fn private(self) -> bool {
        self.0 & Self::SWAPPED != 0 || self.0 & (Self::PRESENT | Self::FILE) == Self::PRESENT
    }
}

/// The pagemap entries of `pages` pages from `base`; `None` when the host
/// does not tell, and then every page counts as holding data.
fn page_states(base: *mut u8, pages: usize) -> Option<Vec<PageState>> {
    static PAGEMAP: OnceLock<Option<OwnedFd>> = OnceLock::new();
    let fd = PAGEMAP
        .get_or_init(|| {
            rustix::fs::open(
                "/proc/self/pagemap",
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ok()
        })
        .as_ref()?;
    let mut raw = vec![0u8; pages * 8];
    let mut at = (base as usize / page_size() * 8) as u64;
    let mut buf = &mut raw[..];
    while !buf.is_empty() {
        let n = rustix::io::pread(fd, &mut *buf, at).ok()?;
        if n == 0 {
            return None;
        }
        buf = &mut buf[n..];
        at += n as u64;
    }
    Some(
        raw.chunks_exact(8)
            .map(|e| PageState(u64::from_ne_bytes(e.try_into().unwrap_or([0xff; 8]))))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM_PAGE: usize = 64 << 10;

    fn memory(wasm_pages: usize) -> Box<dyn LinearMemory> {
        CageMemoryCreator
            .new_memory(
                MemoryType::new(wasm_pages as u32, None),
                wasm_pages * WASM_PAGE,
                None,
                Some(1 << 32),
                2 << 20,
            )
            .expect("memory")
    }

    fn bytes(m: &dyn LinearMemory) -> &[u8] {
        // SAFETY: the test owns the memory; it is accessible up to its size.
        unsafe { std::slice::from_raw_parts(m.as_ptr(), m.byte_size()) }
    }

    fn bytes_mut(m: &mut dyn LinearMemory) -> &mut [u8] {
        // SAFETY: as `bytes`, and the borrow is exclusive.
        unsafe { std::slice::from_raw_parts_mut(m.as_ptr(), m.byte_size()) }
    }

    fn fork(parent: &dyn LinearMemory) -> Box<dyn LinearMemory> {
        let mut child = memory(1);
        child.grow_to(parent.byte_size()).expect("grow");
        // SAFETY: both are cage memories of this size; no guest runs.
        unsafe { fork_memory(parent.as_ptr(), child.as_ptr(), parent.byte_size()) }.expect("fork");
        child
    }

    #[test]
    fn a_child_starts_equal_and_then_each_side_is_private() {
        let mut parent = memory(16);
        bytes_mut(&mut *parent)[..3 * WASM_PAGE].fill(0xa5);
        bytes_mut(&mut *parent)[9 * WASM_PAGE + 7] = 1;
        let mut child = memory(2); // holds data a fresh instance put there
        bytes_mut(&mut *child)[100] = 9;
        drop(child);
        let mut child = fork(&*parent);
        assert!(bytes(&*child) == bytes(&*parent));

        bytes_mut(&mut *parent)[5] = 0;
        bytes_mut(&mut *child)[9 * WASM_PAGE + 8] = 2;
        assert_eq!(bytes(&*child)[5], 0xa5);
        assert_eq!(bytes(&*parent)[9 * WASM_PAGE + 8], 0);

        // A second fork sees the parent's write, not the first child's.
        parent.grow_to(20 * WASM_PAGE).expect("grow");
        bytes_mut(&mut *parent)[19 * WASM_PAGE] = 3;
        let second = fork(&*parent);
        assert!(bytes(&*second) == bytes(&*parent));
        assert_eq!(bytes(&*second)[5], 0);
        assert_eq!(bytes(&*second)[9 * WASM_PAGE + 8], 0);
        assert_eq!(bytes(&*child)[5], 0xa5);
    }

    #[test]
    fn forks_stay_exact_through_many_layers_and_folds() {
        let pages = 8;
        let mut parent = memory(pages);
        let page = page_size();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut kept: Vec<(Box<dyn LinearMemory>, Vec<u8>)> = Vec::new();
        for round in 0..200 {
            // Scattered writes, some of them zeros over data.
            for _ in 0..(next() % 6) {
                let at = (next() as usize) % (pages * WASM_PAGE);
                let len = (next() as usize) % (3 * page);
                let end = (at + len).min(pages * WASM_PAGE);
                let byte = if next() % 4 == 0 { 0 } else { round as u8 | 1 };
                bytes_mut(&mut *parent)[at..end].fill(byte);
            }
            if round == 120 {
                parent.grow_to((pages + 2) * WASM_PAGE).expect("grow");
                bytes_mut(&mut *parent)[pages * WASM_PAGE + 1] = 7;
            }
            let child = fork(&*parent);
            assert!(bytes(&*child) == bytes(&*parent), "fork {round} differs");
            if round % 25 == 0 {
                let snapshot = bytes(&*child).to_vec();
                kept.push((child, snapshot));
            }
        }
        for (child, snapshot) in &kept {
            assert!(bytes(&**child) == &snapshot[..], "a child changed");
        }
        let layers = layers_of(parent.as_ptr()).expect("registered");
        let layers = layers.lock().expect("lock");
        assert!(layers.segments.len() <= MAX_SEGMENTS + 1);
        assert!(layers.files() <= MAX_FILES + 1);
    }

    #[test]
    fn a_memory_in_its_own_file_forks_from_it_and_stays_exact() {
        let mut parent = memory(4);
        bytes_mut(&mut *parent)[..WASM_PAGE].fill(1); // "data segments"
                                                      // SAFETY: the test's own memory, 4 pages accessible.
        unsafe { share_from_file(parent.as_ptr(), parent.byte_size()) }.expect("share");
        assert_eq!(bytes(&*parent)[WASM_PAGE - 1], 1);
        bytes_mut(&mut *parent)[2 * WASM_PAGE] = 2;
        parent.grow_to(6 * WASM_PAGE).expect("grow");
        bytes_mut(&mut *parent)[5 * WASM_PAGE + 3] = 3; // grown from the file
        let child = fork(&*parent);
        assert!(bytes(&*child) == bytes(&*parent));
        {
            let layers = layers_of(parent.as_ptr()).expect("registered");
            let layers = layers.lock().expect("lock");
            // The first fork froze the live file itself: no copy, one layer.
            assert!(layers.live.is_none());
            assert_eq!((layers.segments.len(), layers.files()), (1, 1));
        }
        bytes_mut(&mut *parent)[0] = 9;
        parent
            .grow_to(7 * WASM_PAGE)
            .expect("grow after the freeze");
        bytes_mut(&mut *parent)[6 * WASM_PAGE] = 4;
        assert_eq!(bytes(&*child)[0], 1);
        assert_eq!(bytes(&*child).len(), 6 * WASM_PAGE);
        let second = fork(&*parent);
        assert!(bytes(&*second) == bytes(&*parent));
        assert_eq!(bytes(&*second)[0], 9);
    }

    #[test]
    fn growth_past_the_reservation_fails() {
        let mut m = memory(1);
        assert!(m.grow_to((1 << 32) + WASM_PAGE).is_err());
        assert!(m.grow_to(2 * WASM_PAGE).is_ok());
        bytes_mut(&mut *m)[2 * WASM_PAGE - 1] = 1;
    }
}

//! The records a sealed filesystem keeps in its namespace, and their
//! encodings (the table in the module documentation of [`super`]).

use std::collections::BTreeMap;

use super::{FileKind, CHUNK, MAX_FILE_SIZE};

pub(super) const SUPERBLOCK_KEY: &[u8] = b"s";
pub(super) const ORPHANS_KEY: &[u8] = b"o";
const SUPERBLOCK_MAGIC: &[u8; 4] = b"WSFS";
/// Format 2 added the chunk index (`x` ‖ ino). Format 1 filesystems are
/// upgraded when mounted.
pub(super) const FORMAT: u32 = 2;
/// The format before the chunk index; see `SealedFs::upgrade`.
pub(super) const FORMAT_1: u32 = 1;
/// First byte of chunk keys.
pub(super) const CHUNK_TAG: u8 = b'c';

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Inode {
    pub kind: FileKind,
    pub nlink: u32,
    /// The containing directory, for directories (the root is its own parent).
    pub parent: u64,
    pub size: u64,
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
}

const INODE_LEN: usize = 1 + 4 + 8 * 5;

impl Inode {
    pub fn new(kind: FileKind, parent: u64, now: u64) -> Self {
        Inode {
            kind,
            nlink: if kind == FileKind::Directory { 2 } else { 1 },
            parent,
            size: 0,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INODE_LEN);
        out.push(self.kind.code());
        out.extend_from_slice(&self.nlink.to_le_bytes());
        for v in [self.parent, self.size, self.atime, self.mtime, self.ctime] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        let inode = Inode {
            kind: FileKind::from_code(r.u8()?)?,
            nlink: r.u32()?,
            parent: r.u64()?,
            size: r.u64()?,
            atime: r.u64()?,
            mtime: r.u64()?,
            ctime: r.u64()?,
        };
        r.0.is_empty().then_some(inode)
    }

    pub fn metadata(&self, ino: u64) -> super::Metadata {
        super::Metadata {
            ino,
            kind: self.kind,
            size: if self.kind == FileKind::File {
                self.size
            } else {
                0
            },
            nlink: u64::from(self.nlink),
            atime: self.atime,
            mtime: self.mtime,
            ctime: self.ctime,
        }
    }
}

pub(super) type Dir = BTreeMap<String, (u64, FileKind)>;

pub(super) fn encode_dir(dir: &Dir) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + dir.len() * 24);
    out.extend_from_slice(&(dir.len() as u32).to_le_bytes());
    for (name, (ino, kind)) in dir {
        // Names are at most MAX_NAME_LEN bytes, checked on the way in.
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&ino.to_le_bytes());
        out.push(kind.code());
    }
    out
}

pub(super) fn decode_dir(bytes: &[u8]) -> Option<Dir> {
    let mut r = Reader(bytes);
    let n = r.u32()?;
    let mut dir = Dir::new();
    for _ in 0..n {
        let len = usize::from(r.u16()?);
        let name = std::str::from_utf8(r.take(len)?).ok()?.to_string();
        let ino = r.u64()?;
        let kind = FileKind::from_code(r.u8()?)?;
        dir.insert(name, (ino, kind));
    }
    r.0.is_empty().then_some(dir)
}

/// Which chunks of a file exist, as sorted, disjoint, non-adjacent ranges
/// of chunk indices. Operations that remove data (truncate, unlink) walk
/// this rather than every index below the file's size, so that their cost
/// follows what is stored: a file may be 2^50 bytes long with one chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Extents(Vec<(u64, u64)>);

/// One past the largest chunk index a file can have.
const MAX_CHUNKS: u64 = MAX_FILE_SIZE.div_ceil(CHUNK);

impl Extents {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The position of the first range that ends after `index`.
    fn first_ending_after(&self, index: u64) -> usize {
        self.0.partition_point(|&(_, end)| end <= index)
    }

    pub fn contains(&self, index: u64) -> bool {
        self.0
            .get(self.first_ending_after(index))
            .is_some_and(|&(start, _)| start <= index)
    }

    pub fn insert(&mut self, index: u64) {
        let i = self.first_ending_after(index);
        match self.0.get(i).copied() {
            Some((start, _)) if start <= index => {}
            next => {
                let joins_prev = i > 0 && self.0[i - 1].1 == index;
                let joins_next = next.is_some_and(|(start, _)| start == index + 1);
                match (joins_prev, joins_next) {
                    (true, true) => {
                        self.0[i - 1].1 = self.0[i].1;
                        self.0.remove(i);
                    }
                    (true, false) => self.0[i - 1].1 = index + 1,
                    (false, true) => self.0[i].0 = index,
                    (false, false) => self.0.insert(i, (index, index + 1)),
                }
            }
        }
    }

    /// Removes and returns the indices from `from` up.
    pub fn split_off(&mut self, from: u64) -> Extents {
        let i = self.first_ending_after(from);
        let mut tail = self.0.split_off(i);
        if let Some(first) = tail.first_mut() {
            if first.0 < from {
                self.0.push((first.0, from));
                first.0 = from;
            }
        }
        Extents(tail)
    }

    /// Every index, in order.
    pub fn indices(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(|&(start, end)| start..end)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.0.len() * 16);
        out.extend_from_slice(&(self.0.len() as u32).to_le_bytes());
        for (start, end) in &self.0 {
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&end.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        let n = r.u32()?;
        let mut ranges = Vec::new();
        let mut last_end = None;
        for _ in 0..n {
            let (start, end) = (r.u64()?, r.u64()?);
            // Sorted, disjoint and non-adjacent, as `insert` keeps them.
            if start >= end || end > MAX_CHUNKS || last_end.is_some_and(|e| start <= e) {
                return None;
            }
            last_end = Some(end);
            ranges.push((start, end));
        }
        r.0.is_empty().then_some(Extents(ranges))
    }
}

impl FromIterator<u64> for Extents {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let mut e = Extents::default();
        for index in iter {
            e.insert(index);
        }
        e
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

fn tagged(tag: u8, ino: u64) -> [u8; 9] {
    let mut k = [tag; 9];
    k[1..].copy_from_slice(&ino.to_be_bytes());
    k
}

pub(super) fn inode_key(ino: u64) -> [u8; 9] {
    tagged(b'i', ino)
}

pub(super) fn dir_key(ino: u64) -> [u8; 9] {
    tagged(b'd', ino)
}

pub(super) fn extents_key(ino: u64) -> [u8; 9] {
    tagged(b'x', ino)
}

pub(super) fn chunk_key(ino: u64, index: u64) -> [u8; 17] {
    let mut k = [CHUNK_TAG; 17];
    k[1..9].copy_from_slice(&ino.to_be_bytes());
    k[9..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The (ino, index) of a chunk key.
pub(super) fn parse_chunk_key(key: &[u8]) -> Option<(u64, u64)> {
    let (&tag, rest) = key.split_first()?;
    if tag != CHUNK_TAG || rest.len() != 16 {
        return None;
    }
    let (ino, index) = rest.split_at(8);
    Some((
        u64::from_be_bytes(ino.try_into().ok()?),
        u64::from_be_bytes(index.try_into().ok()?),
    ))
}

/// Number of chunks a file of `size` bytes spans.
pub(super) fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK)
}

pub(super) fn encode_superblock(next_ino: u64) -> Vec<u8> {
    [
        &SUPERBLOCK_MAGIC[..],
        &FORMAT.to_le_bytes(),
        &next_ino.to_le_bytes(),
    ]
    .concat()
}

/// The format and next inode number of a superblock.
pub(super) fn decode_superblock(bytes: &[u8]) -> Option<(u32, u64)> {
    let mut r = Reader(bytes);
    if r.take(4)? != SUPERBLOCK_MAGIC {
        return None;
    }
    let format = r.u32()?;
    let next = r.u64()?;
    r.0.is_empty().then_some((format, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let inode = Inode {
            kind: FileKind::Directory,
            nlink: 3,
            parent: 9,
            size: 123,
            atime: 1,
            mtime: 2,
            ctime: 3,
        };
        assert_eq!(Inode::decode(&inode.encode()), Some(inode));
        assert_eq!(Inode::decode(&inode.encode()[1..]), None);
        let mut bad_kind = inode.encode();
        bad_kind[0] = 7;
        assert_eq!(Inode::decode(&bad_kind), None);

        let mut dir = Dir::new();
        dir.insert("a".into(), (5, FileKind::File));
        dir.insert("ünï".into(), (6, FileKind::Directory));
        let bytes = encode_dir(&dir);
        assert_eq!(decode_dir(&bytes), Some(dir));
        assert_eq!(decode_dir(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode_dir(&[bytes.as_slice(), &[0]].concat()), None);

        assert_eq!(
            decode_superblock(&encode_superblock(42)),
            Some((FORMAT, 42))
        );
        assert_eq!(decode_superblock(b"WSFS"), None);
    }

    #[test]
    fn chunk_arithmetic() {
        assert_eq!(chunk_count(0), 0);
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(CHUNK), 1);
        assert_eq!(chunk_count(CHUNK + 1), 2);
        assert!(chunk_key(1, 2) < chunk_key(1, 3));
        assert_eq!(parse_chunk_key(&chunk_key(7, 9)), Some((7, 9)));
        assert_eq!(parse_chunk_key(&inode_key(7)), None);
    }

    #[test]
    fn extents_follow_a_model() {
        let mut e = Extents::default();
        let mut model = std::collections::BTreeSet::new();
        // Deterministic pseudo-random indices, clustered so ranges merge.
        let mut x = 7u64;
        for step in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let index = (x >> 33) % 64;
            if step % 50 == 49 {
                let tail = e.split_off(index);
                let expected: Vec<u64> = model.split_off(&index).into_iter().collect();
                assert_eq!(tail.indices().collect::<Vec<_>>(), expected);
            } else {
                e.insert(index);
                model.insert(index);
            }
            assert_eq!(
                e.indices().collect::<Vec<_>>(),
                model.iter().copied().collect::<Vec<_>>()
            );
            for i in 0..66 {
                assert_eq!(e.contains(i), model.contains(&i), "index {i}");
            }
            assert_eq!(Extents::decode(&e.encode()), Some(e.clone()));
        }
    }

    #[test]
    fn malformed_extents_are_refused() {
        let enc = |ranges: &[(u64, u64)]| Extents(ranges.to_vec()).encode();
        assert!(Extents::decode(&enc(&[(0, 2), (5, 6)])).is_some());
        for bad in [
            &[(2u64, 2u64)][..],
            &[(3, 1)],
            &[(0, 2), (2, 3)],
            &[(4, 5), (0, 1)],
            &[(0, MAX_CHUNKS + 1)],
        ] {
            assert_eq!(Extents::decode(&enc(bad)), None, "{bad:?}");
        }
        assert_eq!(Extents::decode(&enc(&[(0, 1)])[..10]), None);
    }
}

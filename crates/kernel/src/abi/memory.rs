//! Bounds-checked access to a cage's linear memory. Every pointer and length
//! a guest passes goes through here: out of range is `EFAULT`, never a host
//! fault.

use super::{Errno, Result};

pub struct GuestMemory<'a> {
    bytes: &'a mut [u8],
}

impl<'a> GuestMemory<'a> {
    pub fn new(bytes: &'a mut [u8]) -> Self {
        GuestMemory { bytes }
    }

    fn range(&self, ptr: u32, len: u32) -> Result<std::ops::Range<usize>> {
        let start = ptr as usize;
        let end = start.checked_add(len as usize).ok_or(Errno::FAULT)?;
        if end > self.bytes.len() {
            return Err(Errno::FAULT);
        }
        Ok(start..end)
    }

    pub fn slice(&self, ptr: u32, len: u32) -> Result<&[u8]> {
        let r = self.range(ptr, len)?;
        Ok(&self.bytes[r])
    }

    pub fn slice_mut(&mut self, ptr: u32, len: u32) -> Result<&mut [u8]> {
        let r = self.range(ptr, len)?;
        Ok(&mut self.bytes[r])
    }

    pub fn read<const N: usize>(&self, ptr: u32) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(ptr, N as u32)?);
        Ok(out)
    }

    pub fn read_u8(&self, ptr: u32) -> Result<u8> {
        Ok(self.read::<1>(ptr)?[0])
    }

    pub fn read_u16(&self, ptr: u32) -> Result<u16> {
        Ok(u16::from_le_bytes(self.read(ptr)?))
    }

    pub fn read_u32(&self, ptr: u32) -> Result<u32> {
        Ok(u32::from_le_bytes(self.read(ptr)?))
    }

    pub fn read_u64(&self, ptr: u32) -> Result<u64> {
        Ok(u64::from_le_bytes(self.read(ptr)?))
    }

    pub fn write_bytes(&mut self, ptr: u32, data: &[u8]) -> Result<()> {
        let len = u32::try_from(data.len()).map_err(|_| Errno::FAULT)?;
        self.slice_mut(ptr, len)?.copy_from_slice(data);
        Ok(())
    }

    pub fn write_u8(&mut self, ptr: u32, v: u8) -> Result<()> {
        self.write_bytes(ptr, &[v])
    }

    pub fn write_u16(&mut self, ptr: u32, v: u16) -> Result<()> {
        self.write_bytes(ptr, &v.to_le_bytes())
    }

    pub fn write_u32(&mut self, ptr: u32, v: u32) -> Result<()> {
        self.write_bytes(ptr, &v.to_le_bytes())
    }

    pub fn write_u64(&mut self, ptr: u32, v: u64) -> Result<()> {
        self.write_bytes(ptr, &v.to_le_bytes())
    }

    /// A UTF-8 string (a path): invalid UTF-8 is `EILSEQ`.
    pub fn str(&self, ptr: u32, len: u32) -> Result<&str> {
        std::str::from_utf8(self.slice(ptr, len)?).map_err(|_| Errno::ILSEQ)
    }

    /// The `(buf, len)` pairs of an iovec array, each checked.
    pub fn iovecs(&self, ptr: u32, count: u32) -> Result<Vec<(u32, u32)>> {
        let table = self.slice(ptr, count.checked_mul(8).ok_or(Errno::FAULT)?)?;
        let mut out = Vec::with_capacity(count as usize);
        for chunk in table.chunks_exact(8) {
            let buf = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let len = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            self.range(buf, len)?;
            out.push((buf, len));
        }
        Ok(out)
    }

    /// The `index`th `(buf, len)` pair of an iovec array, checked.
    pub fn iovec(&self, ptr: u32, index: u32) -> Result<(u32, u32)> {
        let at = index
            .checked_mul(8)
            .and_then(|off| ptr.checked_add(off))
            .ok_or(Errno::FAULT)?;
        let entry: [u8; 8] = self.read(at)?;
        let buf = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let len = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
        self.range(buf, len)?;
        Ok((buf, len))
    }

    /// The first iovec with a non-zero length, for streams where reading
    /// a second buffer could block after data already arrived.
    pub fn first_iovec(&self, ptr: u32, count: u32) -> Result<Option<(u32, u32)>> {
        for i in 0..count {
            let (buf, len) = self.iovec(ptr, i)?;
            if len > 0 {
                return Ok(Some((buf, len)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_is_efault() {
        let mut bytes = vec![0u8; 16];
        let mut m = GuestMemory::new(&mut bytes);
        assert_eq!(m.read_u32(13), Err(Errno::FAULT));
        assert_eq!(m.slice(u32::MAX, 2).err(), Some(Errno::FAULT));
        assert_eq!(m.write_u64(8, 7), Ok(()));
        assert_eq!(m.write_u64(9, 7), Err(Errno::FAULT));
        assert_eq!(m.read_u64(8), Ok(7));
    }

    #[test]
    fn iovecs_are_checked() {
        let mut bytes = vec![0u8; 64];
        bytes[0..4].copy_from_slice(&32u32.to_le_bytes());
        bytes[4..8].copy_from_slice(&40u32.to_le_bytes());
        let m = GuestMemory::new(&mut bytes);
        assert_eq!(m.iovecs(0, 1), Err(Errno::FAULT));
    }
}

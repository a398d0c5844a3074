//! A writer of `newc` cpio archives, the format the kernel unpacks an
//! initramfs from: a 110-byte ASCII header per entry, the NUL-terminated
//! name and the data, each padded to 4 bytes, closed by `TRAILER!!!`.

use std::io::{self, Write};

use crate::BootError;

const MAGIC: &str = "070701";

/// File type bits of `c_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Writes entries in order; [`CpioWriter::finish`] closes the archive.
pub struct CpioWriter<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> CpioWriter<W> {
        CpioWriter {
            out,
            written: 0,
            next_ino: 1,
        }
    }

    /// A directory (its parents must come first).
    pub fn directory(&mut self, name: &str, perm: u32) -> Result<(), BootError> {
        self.entry(name, S_IFDIR | (perm & 0o7777), 2, (0, 0), &[])
    }

    /// A regular file with `data`.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> Result<(), BootError> {
        self.entry(name, S_IFREG | (perm & 0o7777), 1, (0, 0), data)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<(), BootError> {
        self.entry(name, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// A character device node.
    pub fn char_device(
        &mut self,
        name: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), BootError> {
        self.entry(name, S_IFCHR | (perm & 0o7777), 1, (major, minor), &[])
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> Result<W, BootError> {
        self.header("TRAILER!!!", 0, 0, 1, (0, 0), 0)?;
        self.pad()?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> Result<(), BootError> {
        if name.is_empty() || name.starts_with('/') || name.contains('\0') {
            return Err(BootError::Cpio(format!("invalid entry name {name:?}")));
        }
        let size = u32::try_from(data.len())
            .map_err(|_| BootError::Cpio(format!("{name} is larger than 4 GiB")))?;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.header(name, ino, mode, nlink, rdev, size)?;
        self.write(data)?;
        self.pad()
    }

    fn header(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        (rdev_major, rdev_minor): (u32, u32),
        size: u32,
    ) -> Result<(), BootError> {
        let namesize = u32::try_from(name.len() + 1)
            .map_err(|_| BootError::Cpio("name too long".to_owned()))?;
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev_major, rdev_minor, namesize, 0,
        ];
        let mut header = String::with_capacity(110);
        header.push_str(MAGIC);
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.write(header.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad()
    }

    fn write(&mut self, data: &[u8]) -> Result<(), BootError> {
        self.out
            .write_all(data)
            .map_err(|e: io::Error| BootError::Cpio(e.to_string()))?;
        self.written += data.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> Result<(), BootError> {
        let pad = (4 - (self.written % 4) as usize) % 4;
        self.write(&[0u8; 3][..pad])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads entries back: (name, mode, rdev major, data).
    fn parse(mut archive: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let header = std::str::from_utf8(&archive[..110]).unwrap();
            assert_eq!(&header[..6], MAGIC);
            let field = |i: usize| u32::from_str_radix(&header[6 + 8 * i..14 + 8 * i], 16).unwrap();
            let (mode, size, major, namesize) = (field(1), field(6), field(9), field(11));
            let name_end = 110 + namesize as usize;
            let name = std::str::from_utf8(&archive[110..name_end - 1])
                .unwrap()
                .to_owned();
            let data_start = (offset + name_end).next_multiple_of(4) - offset;
            let data = archive[data_start..data_start + size as usize].to_vec();
            let next = (offset + data_start + size as usize).next_multiple_of(4) - offset;
            offset += next;
            archive = &archive[next..];
            if name == "TRAILER!!!" {
                assert!(archive.is_empty());
                return out;
            }
            out.push((name, mode, major, data));
        }
    }

    #[test]
    fn entries_read_back_with_types_and_padding() {
        let mut w = CpioWriter::new(Vec::new());
        w.directory("bin", 0o755).unwrap();
        w.file("bin/busybox", 0o755, b"abcde").unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        w.char_device("console", 0o600, 5, 1).unwrap();
        let archive = w.finish().unwrap();
        assert_eq!(archive.len() % 4, 0);
        let entries = parse(&archive);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].0, "bin");
        assert_eq!(entries[0].1, S_IFDIR | 0o755);
        assert_eq!(entries[1].3, b"abcde");
        assert_eq!(entries[2].1 & 0o170000, S_IFLNK);
        assert_eq!(entries[2].3, b"busybox");
        assert_eq!(entries[3].1, S_IFCHR | 0o600);
        assert_eq!(entries[3].2, 5);
    }

    #[test]
    fn bad_names_are_refused() {
        let mut w = CpioWriter::new(Vec::new());
        assert!(w.file("/abs", 0o644, b"").is_err());
        assert!(w.file("", 0o644, b"").is_err());
        assert!(w.file("a\0b", 0o644, b"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_files_round_trip(files in proptest::collection::vec(
            ("[a-z]{1,12}", proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)), 0..8)) {
            let mut w = CpioWriter::new(Vec::new());
            for (name, data) in &files {
                w.file(name, 0o644, data).unwrap();
            }
            let entries = parse(&w.finish().unwrap());
            proptest::prop_assert_eq!(entries.len(), files.len());
            for ((name, data), entry) in files.iter().zip(&entries) {
                proptest::prop_assert_eq!(name, &entry.0);
                proptest::prop_assert_eq!(data, &entry.3);
            }
        }
    }
}

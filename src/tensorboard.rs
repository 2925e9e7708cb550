//! TensorBoard scalars without TensorFlow: an event file is TFRecord framing (length,
//! masked CRC-32C of the length, bytes, masked CRC-32C of the bytes) around protobuf `Event`
//! messages, and a scalar is `Event { wall_time, step, summary { value { tag, simple_value } } }`.
//! Those few fields are encoded here by hand. The crates for it did not fit: `tensorboard-rs`
//! 0.5 panics (`expect`) where a directory cannot be written and pulls protobuf 2 and image
//! 0.23; `tboard` 0.1 generates its protobuf code with prost-build, which needs `protoc`.
//! TensorBoard reads every `*tfevents*` file of a directory, so each writer opens a file of
//! its own and a resumed run simply adds one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// CRC-32C (Castagnoli), bitwise-reflected table.
fn crc32c(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0x82F6_3B78 ^ (c >> 1) } else { c >> 1 };
            }
            *slot = c;
        }
        t
    });
    !bytes
        .iter()
        .fold(!0u32, |c, &b| table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8))
}

/// TFRecord's masked CRC (a CRC stored next to the data it covers is rotated and offset so
/// that CRCs of CRCs stay well distributed).
fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xA282_EAD8)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited protobuf field.
fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `Event { wall_time = 1, step = 2, file_version = 3 | summary = 5 }`.
fn event(wall_time: f64, step: i64, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut e = Vec::with_capacity(64);
    e.push(1 << 3 | 1); // double
    e.extend_from_slice(&wall_time.to_le_bytes());
    e.push(2 << 3); // varint
    varint(&mut e, step as u64);
    body(&mut e);
    e
}

/// `Summary { value = 1: Value { tag = 1, simple_value = 2 (float) } }`.
fn scalar_summary(tag: &str, value: f32) -> Vec<u8> {
    let mut v = Vec::with_capacity(tag.len() + 8);
    bytes_field(&mut v, 1, tag.as_bytes());
    v.push(2 << 3 | 5); // fixed32
    v.extend_from_slice(&value.to_le_bytes());
    let mut summary = Vec::with_capacity(v.len() + 2);
    bytes_field(&mut summary, 1, &v);
    summary
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One event file in a directory, appended to scalar by scalar.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// A new event file in `dir` (created if missing), opened with the `file_version` event
    /// TensorBoard expects first.
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        static FILES: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir)?;
        let secs = now() as u64;
        let host = crate::checkpoint::hostname();
        let n = FILES.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("events.out.tfevents.{secs}.{host}.{}.{n}", std::process::id()));
        let file = std::fs::OpenOptions::new().create_new(true).write(true).open(&path)?;
        let mut w = Self {
            path,
            out: BufWriter::new(file),
        };
        let version = event(now(), 0, |e| bytes_field(e, 3, b"brain.Event:2"));
        w.record(&version)?;
        w.flush()?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record(&mut self, data: &[u8]) -> std::io::Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        self.out.write_all(&len)?;
        self.out.write_all(&masked_crc(&len).to_le_bytes())?;
        self.out.write_all(data)?;
        self.out.write_all(&masked_crc(data).to_le_bytes())
    }

    /// `tag` = `value` at `step` (TensorBoard plots a tag's values against their steps).
    /// Non-finite values are written too: TensorBoard shows them as gaps.
    pub fn scalar(&mut self, tag: &str, step: i64, value: f64) -> std::io::Result<()> {
        let e = event(now(), step, |e| bytes_field(e, 5, &scalar_summary(tag, value as f32)));
        self.record(&e)
    }

    /// Make what was written visible to a reader (TensorBoard polls the file).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_values() {
        // RFC 3720 (iSCSI) B.4 and the usual "123456789" check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    }

    #[test]
    fn varints_are_little_endian_groups_of_seven_bits() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
        let mut v = Vec::new();
        varint(&mut v, (-1i64) as u64);
        assert_eq!(v.len(), 10, "a negative step takes ten bytes, as protobuf's int64 does");
    }

    #[test]
    fn records_are_framed_with_their_length_and_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.scalar("a/b", 3, 0.5).unwrap();
        w.flush().unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let mut at = 0;
        let mut records = 0;
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            assert_eq!(len_crc, masked_crc(&bytes[at..at + 8]));
            let data = &bytes[at + 12..at + 12 + len];
            let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc(data));
            at += 16 + len;
            records += 1;
        }
        assert_eq!((at, records), (bytes.len(), 2), "the version event, then the scalar");
    }
}

//! COMPRESS=DEFLATE (RFC 4978): raw DEFLATE in both directions.
//!
//! Raw means no zlib header or trailer. Writes are compressed as they come
//! and sync-flushed on `flush()` (a DEFLATE sync flush ends on a byte
//! boundary and emits everything so far), so a command the protocol layer
//! has flushed is never held back in the compressor. Reads decompress from
//! a small input buffer; both directions share the underlying stream, which
//! is passed in on every call.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::io::{self, Read, Write};

/// Compressed bytes read from the stream at a time.
const INPUT_BUFFER: usize = 16 * 1024;
/// Compressed bytes produced before they are written out; see
/// [`Deflate::flush`] for why it is this large.
const OUTPUT_BUFFER: usize = 256 * 1024;

/// The compressor and decompressor state of one connection.
pub(crate) struct Deflate {
    compress: Compress,
    decompress: Decompress,
    input: Vec<u8>,
    start: usize,
    output: Vec<u8>,
    ended: bool,
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate")
            .field("compressed_in", &self.decompress.total_in())
            .field("compressed_out", &self.compress.total_out())
            .finish()
    }
}

impl Deflate {
    /// Fresh raw DEFLATE streams (default level, 32 KiB window).
    pub(crate) fn new() -> Deflate {
        Deflate {
            compress: Compress::new(Compression::default(), false),
            decompress: Decompress::new(false),
            input: Vec::with_capacity(INPUT_BUFFER),
            start: 0,
            output: Vec::with_capacity(OUTPUT_BUFFER),
            ended: false,
        }
    }

    /// Reads decompressed bytes into `buf`, reading compressed bytes from
    /// `stream` as needed; blocks until at least one byte is available.
    /// `Ok(0)` at the end of the stream.
    pub(crate) fn read(&mut self, stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.ended {
                return Ok(0);
            }
            // Even without new input the decompressor may hold output that
            // did not fit last time: ask it before blocking on the stream.
            let (consumed, produced) = self.inflate(buf)?;
            if produced > 0 {
                return Ok(produced);
            }
            if consumed > 0 || self.ended {
                continue;
            }
            if self.fill(stream)? == 0 {
                return Ok(0);
            }
        }
    }

    /// Decompresses from the input buffer into `buf`: (consumed, produced).
    fn inflate(&mut self, buf: &mut [u8]) -> io::Result<(usize, usize)> {
        let (before_in, before_out) = (self.decompress.total_in(), self.decompress.total_out());
        let status = self
            .decompress
            .decompress(&self.input[self.start..], buf, FlushDecompress::Sync)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let consumed = counted(self.decompress.total_in() - before_in);
        let produced = counted(self.decompress.total_out() - before_out);
        self.start += consumed;
        if status == Status::StreamEnd {
            self.ended = true;
        }
        Ok((consumed, produced))
    }

    /// Reads more compressed bytes, keeping any not yet consumed; returns
    /// how many were read (0 at the end of the stream).
    fn fill(&mut self, stream: &mut impl Read) -> io::Result<usize> {
        self.input.drain(..self.start);
        self.start = 0;
        let have = self.input.len();
        if have >= INPUT_BUFFER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the compressed stream makes no progress",
            ));
        }
        self.input.resize(INPUT_BUFFER, 0);
        let result = stream.read(&mut self.input[have..]);
        let read = *result.as_ref().unwrap_or(&0);
        self.input.truncate(have + read);
        result
    }

    /// Compresses all of `buf` and writes what the compressor emits.
    pub(crate) fn write(&mut self, stream: &mut impl Write, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            let before = self.compress.total_in();
            self.deflate(rest, FlushCompress::None)?;
            let consumed = counted(self.compress.total_in() - before);
            rest = &rest[consumed..];
            stream.write_all(&self.output)?;
        }
        Ok(buf.len())
    }

    /// Sync-flushes the compressor, writes everything, flushes `stream`.
    ///
    /// miniz_oxide (flate2's backend) skips the sync flush in a call that
    /// starts by handing out output left over from an earlier call, and
    /// does not finish it in later calls without the flag. So: first drain
    /// the leftovers with plain steps, then sync-flush into a buffer large
    /// enough for the blocks it may still emit (two of its 85 KB internal
    /// blocks), repeating zlib-style while the buffer comes back full.
    pub(crate) fn flush(&mut self, stream: &mut impl Write) -> io::Result<()> {
        loop {
            let before = self.compress.total_out();
            self.deflate(&[], FlushCompress::None)?;
            stream.write_all(&self.output)?;
            if self.compress.total_out() == before {
                break;
            }
        }
        loop {
            self.deflate(&[], FlushCompress::Sync)?;
            stream.write_all(&self.output)?;
            if self.output.len() < self.output.capacity() {
                break;
            }
        }
        stream.flush()
    }

    /// One compressor step from `input` into the (cleared) output buffer.
    fn deflate(&mut self, input: &[u8], flush: FlushCompress) -> io::Result<()> {
        self.output.clear();
        self.compress
            .compress_vec(input, &mut self.output, flush)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(())
    }
}

/// A byte count flate2 reports as u64, bounded by a buffer length.
fn counted(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    /// A reader that hands out at most `chunk` bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(self.chunk).min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn compress_all(parts: &[&[u8]]) -> Vec<u8> {
        let mut deflate = Deflate::new();
        let mut wire = Vec::new();
        for part in parts {
            deflate.write(&mut wire, part).expect("write");
            deflate.flush(&mut wire).expect("flush");
        }
        wire
    }

    #[test]
    fn flush_emits_a_complete_sync_flushed_block() {
        let mut deflate = Deflate::new();
        let mut wire = Vec::new();
        deflate.write(&mut wire, b"a NOOP\r\n").expect("write");
        deflate.flush(&mut wire).expect("flush");
        assert!(wire.ends_with(&[0, 0, 0xff, 0xff]), "{wire:?}");
        let mut plain = [0u8; 64];
        let n = flate2::read::DeflateDecoder::new(Cursor::new(&wire))
            .read(&mut plain)
            .expect("a standard decoder reads it");
        assert_eq!(&plain[..n], b"a NOOP\r\n");
    }

    #[test]
    fn reads_what_a_standard_encoder_wrote() {
        let text = b"* 1 FETCH (BODY[] {5}\r\nhello)\r\n".repeat(1000);
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(&text).expect("encode");
        let wire = encoder.finish().expect("finish");
        let mut deflate = Deflate::new();
        let mut stream = Trickle {
            data: &wire,
            chunk: 7,
        };
        let mut out = Vec::new();
        let mut buf = [0u8; 100];
        loop {
            let n = deflate.read(&mut stream, &mut buf).expect("read");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(
            out == text,
            "{} bytes read, {} expected",
            out.len(),
            text.len()
        );
    }

    /// Incompressible writes of a size where a naive sync flush with a
    /// small buffer loses the end of the data in miniz_oxide.
    #[test]
    fn every_flush_delivers_everything_written_so_far() {
        let mut x: u64 = 88_172_645_463_325_252;
        let mut random = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        let mut writer = Deflate::new();
        let mut reader = Deflate::new();
        for len in [31_746, 1, 100_000, 70_000, 300_000, 5] {
            let data = random(len);
            let mut wire = Vec::new();
            writer.write(&mut wire, &data).expect("write");
            writer.flush(&mut wire).expect("flush");
            assert!(wire.ends_with(&[0, 0, 0xff, 0xff]));
            let mut stream = Cursor::new(wire);
            let mut out = vec![0u8; len];
            reader.read_exact_from(&mut stream, &mut out);
            assert!(out == data, "{len} bytes differ");
        }
    }

    impl Deflate {
        fn read_exact_from(&mut self, stream: &mut impl Read, mut out: &mut [u8]) {
            while !out.is_empty() {
                let n = self.read(stream, out).expect("read");
                assert!(n > 0, "stream ended early");
                out = &mut out[n..];
            }
        }
    }

    #[test]
    fn garbage_is_invalid_data() {
        let mut deflate = Deflate::new();
        let mut stream = Cursor::new(vec![0xffu8; 64]);
        let err = deflate
            .read(&mut stream, &mut [0u8; 16])
            .expect_err("garbage");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    proptest! {
        #[test]
        fn round_trips(parts in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..40_000), 1..5),
            chunk in 1usize..5000, read_size in 1usize..3000) {
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let wire = compress_all(&refs);
            let expected: Vec<u8> = parts.concat();
            let mut deflate = Deflate::new();
            let mut stream = Trickle { data: &wire, chunk };
            let mut out = Vec::new();
            let mut buf = vec![0u8; read_size];
            while out.len() < expected.len() {
                let n = deflate.read(&mut stream, &mut buf).expect("read");
                prop_assert!(n > 0);
                out.extend_from_slice(&buf[..n]);
            }
            prop_assert!(out == expected, "{} bytes read, {} expected", out.len(), expected.len());
        }
    }
}

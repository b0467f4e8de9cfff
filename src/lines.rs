//! Line splitting over large buffers with `memchr`.

/// One physical line of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line without its `\n` (a trailing `\r` is left for the parser to strip).
    pub bytes: &'a [u8],
    /// Offset just past the line's `\n` (or the end of the buffer for a last line without one).
    pub end: u64,
    /// Whether the line ended with `\n`.
    pub complete: bool,
}

/// Iterates over the lines of `buf`, the last one possibly without `\n`.
pub struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Lines<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Lines::with_base(buf, 0)
    }

    /// `base` is the file offset of `buf[0]`.
    pub fn with_base(buf: &'a [u8], base: u64) -> Self {
        Lines { buf, pos: 0, base }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;
    fn next(&mut self) -> Option<Line<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let (bytes, used, complete) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], i + 1, true),
            None => (rest, rest.len(), false),
        };
        self.pos += used;
        Some(Line {
            bytes,
            end: self.base + self.pos as u64,
            complete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_offsets() {
        let v: Vec<_> = Lines::new(b"a\r\r\n\r\nbc\nd").collect();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].bytes, b"a\r\r");
        assert_eq!(v[0].end, 4);
        assert_eq!(v[1].bytes, b"\r");
        assert_eq!(v[2].bytes, b"bc");
        assert_eq!(v[2].end, 9);
        assert_eq!(v[3].bytes, b"d");
        assert!(!v[3].complete);
        assert_eq!(Lines::with_base(b"x\n", 100).next().unwrap().end, 102);
    }
}

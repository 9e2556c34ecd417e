//! The guest's COM1 output, kept for the serial pane (the TUI owns the
//! terminal, so the UART can't write to stdout).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// Bytes kept: the pane shows the tail.
const KEEP: usize = 64 * 1024;

/// A shared, bounded byte buffer the UART writes into.
#[derive(Clone, Default)]
pub struct SerialBuffer(Arc<Mutex<Vec<u8>>>);

impl SerialBuffer {
    /// The kept output as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        match self.0.lock() {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => String::new(),
        }
    }
}

impl Write for SerialBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
            if b.len() > KEEP {
                let cut = b.len() - KEEP;
                b.drain(..cut);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail() {
        let mut s = SerialBuffer::default();
        let other = s.clone();
        s.write_all(&vec![b'a'; KEEP]).unwrap();
        s.write_all(b"xyz").unwrap();
        let t = other.text();
        assert_eq!(t.len(), KEEP);
        assert!(t.ends_with("axyz"));
    }
}

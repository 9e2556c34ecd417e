//! Capturing the guest's serial output in memory (bench, compare).

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A `Write` into a shared buffer: give a clone to the machine as its
/// serial output and read the text afterwards.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Everything written so far, as (lossy) UTF-8.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|v| String::from_utf8_lossy(&v).to_string())
            .unwrap_or_default()
    }
}

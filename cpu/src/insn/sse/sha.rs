//! The SHA extensions (SHA1RNDS4, SHA1NEXTE, SHA1MSG1/2, SHA256RNDS2, SHA256MSG1/2).

use crate::exec::Handler;
use iced_x86::Code;

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    let _ = code;
    None
}

//! XSAVE, XRSTOR and XSAVEOPT with the x87 and SSE state components (XCR0 bits 0 and 1).

use crate::exec::Handler;
use iced_x86::Code;

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    let _ = code;
    None
}

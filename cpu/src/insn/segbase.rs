//! FSGSBASE: RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE (CR4.FSGSBASE).

use crate::exec::Handler;
use iced_x86::Code;

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    let _ = code;
    None
}

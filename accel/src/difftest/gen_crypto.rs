//! Cases for SSE4.2 (string compares, PCMPGTQ, CRC32), AES-NI, PCLMULQDQ and SHA.

use super::Form;
use crate::difftest::batch::Alloc;
use crate::difftest::case::Case;
use crate::difftest::rng::Rng;

/// This generator's forms.
pub(super) fn forms() -> Vec<Form> {
    Vec::new()
}

/// A case for `form` if it is one of this generator's: `Some(None)` when
/// this try's random choices cannot be encoded (the caller tries again).
pub(super) fn try_case(
    gen: &mut super::Generator,
    rng: &mut Rng,
    form: &Form,
    index: u64,
    alloc: &mut Alloc,
) -> Option<Option<Case>> {
    let _ = (gen, rng, form, index, alloc);
    None
}

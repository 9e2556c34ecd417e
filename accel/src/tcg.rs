//! The tcg accelerator: the ringside interpreter. (Being written.)

//! The general-purpose integer instruction set, one file per family (as
//! Bochs organizes it). Each public function is a [`crate::exec::Handler`]
//! or a generic that the selector monomorphizes into one.

pub(crate) mod alu;
pub(crate) mod bcd;
pub(crate) mod bit;
pub(crate) mod bmi;
pub(crate) mod branch;
pub(crate) mod misc;
pub(crate) mod mmx;
pub(crate) mod mov;
pub(crate) mod muldiv;
pub(crate) mod rdrand;
pub(crate) mod segbase;
pub(crate) mod shift;
pub(crate) mod sse;
pub(crate) mod stack;
pub(crate) mod string;
pub(crate) mod x87;

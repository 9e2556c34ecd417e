//! Exceptions raised by instruction semantics.
//!
//! A semantic function returns `Err(Fault)` and the interpreter delivers it
//! through the IVT/IDT. Faults are values, not panics: every guest misdeed
//! ends as one of these or as a clean machine stop.

use std::fmt;

/// Exception vectors (SDM Vol. 3A, Table 6-1).
pub mod vector {
    pub const DE: u8 = 0;
    pub const DB: u8 = 1;
    pub const NMI: u8 = 2;
    pub const BP: u8 = 3;
    pub const OF: u8 = 4;
    pub const BR: u8 = 5;
    pub const UD: u8 = 6;
    pub const NM: u8 = 7;
    pub const DF: u8 = 8;
    pub const TS: u8 = 10;
    pub const NP: u8 = 11;
    pub const SS: u8 = 12;
    pub const GP: u8 = 13;
    pub const PF: u8 = 14;
    pub const MF: u8 = 16;
    pub const AC: u8 = 17;
    pub const MC: u8 = 18;
    pub const XM: u8 = 19;
}

/// An exception to deliver to the guest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub vector: u8,
    /// Pushed error code, for the vectors that have one.
    pub error_code: Option<u32>,
    /// Faulting linear address, for #PF (loaded into CR2 on delivery).
    pub cr2: Option<u64>,
}

impl Fault {
    const fn plain(vector: u8) -> Self {
        Fault {
            vector,
            error_code: None,
            cr2: None,
        }
    }
    const fn with_code(vector: u8, code: u32) -> Self {
        Fault {
            vector,
            error_code: Some(code),
            cr2: None,
        }
    }
    pub const DE: Fault = Fault::plain(vector::DE);
    pub const DB: Fault = Fault::plain(vector::DB);
    pub const BP: Fault = Fault::plain(vector::BP);
    pub const OF: Fault = Fault::plain(vector::OF);
    pub const BR: Fault = Fault::plain(vector::BR);
    pub const UD: Fault = Fault::plain(vector::UD);
    pub const NM: Fault = Fault::plain(vector::NM);
    pub const MF: Fault = Fault::plain(vector::MF);
    pub const XM: Fault = Fault::plain(vector::XM);
    pub const fn gp(code: u32) -> Fault {
        Fault::with_code(vector::GP, code)
    }
    pub const fn gp0() -> Fault {
        Fault::with_code(vector::GP, 0)
    }
    pub const fn ss(code: u32) -> Fault {
        Fault::with_code(vector::SS, code)
    }
    pub const fn np(code: u32) -> Fault {
        Fault::with_code(vector::NP, code)
    }
    pub const fn ts(code: u32) -> Fault {
        Fault::with_code(vector::TS, code)
    }
    pub const fn ac() -> Fault {
        Fault::with_code(vector::AC, 0)
    }
    pub const fn df() -> Fault {
        Fault::with_code(vector::DF, 0)
    }
    pub const fn pf(addr: u64, code: u32) -> Fault {
        Fault {
            vector: vector::PF,
            error_code: Some(code),
            cr2: Some(addr),
        }
    }

    /// Mnemonic, e.g. "#GP".
    pub fn name(&self) -> &'static str {
        vector_name(self.vector)
    }

    /// Contributory exceptions, for the double-fault rules (Table 6-5).
    pub fn is_contributory(&self) -> bool {
        matches!(
            self.vector,
            vector::DE | vector::TS | vector::NP | vector::SS | vector::GP
        )
    }
}

/// The SDM mnemonic of an exception vector, or "INT" for the others.
pub fn vector_name(v: u8) -> &'static str {
    match v {
        0 => "#DE",
        1 => "#DB",
        2 => "NMI",
        3 => "#BP",
        4 => "#OF",
        5 => "#BR",
        6 => "#UD",
        7 => "#NM",
        8 => "#DF",
        10 => "#TS",
        11 => "#NP",
        12 => "#SS",
        13 => "#GP",
        14 => "#PF",
        16 => "#MF",
        17 => "#AC",
        18 => "#MC",
        19 => "#XM",
        _ => "INT",
    }
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(ec) = self.error_code {
            write!(f, "({ec:#x})")?;
        }
        if let Some(a) = self.cr2 {
            write!(f, " cr2={a:#x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

//! Platform devices of the ringside PC. (Being written: see the devices task.)

//! Pure rules of the product, no I/O: the types inputs are parsed into, and
//! the functions that decide (a model's clearance, what a lookup means).

pub mod clearance;
pub mod imei;
pub mod registry;
pub mod text;

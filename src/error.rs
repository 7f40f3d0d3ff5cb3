//! (being written)
pub struct Error;
pub enum ExitKind {}

//! MIoT specs (placeholder, being written).

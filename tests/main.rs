//! The one integration test binary. Each module drives a part of the
//! product; tests that need devices start a simulated fleet on loopback.

mod automation;
mod cli;
mod cloud;
mod cloud_vectors;
mod common;
mod discover;
mod fuzz_seeds;
mod mcp;
mod names;
mod vectors;

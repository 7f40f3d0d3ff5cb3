//! The one integration test binary. Each module drives a part of the
//! product; tests that need devices start a simulated fleet on loopback.

mod cli;
mod cloud_vectors;
mod common;
mod fuzz_seeds;
mod vectors;

//! The `ftp-alg` command line.

fn main() {}

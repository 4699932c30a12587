//! Whether the PostgreSQL variants of the tests run is decided when the tests are built, so a
//! run without `TEST_POSTGRES_URL` reports them as ignored (with the reason) instead of
//! passing them without running anything. The same holds for the S3 tests.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(kopilka_postgres_tests)");
    println!("cargo::rerun-if-env-changed=TEST_POSTGRES_URL");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        println!("cargo::rustc-cfg=kopilka_postgres_tests");
    }
    // Likewise the blob store's S3 tests and TEST_S3_ENDPOINT (e.g. `moto_server`).
    println!("cargo::rustc-check-cfg=cfg(kopilka_s3_tests)");
    println!("cargo::rerun-if-env-changed=TEST_S3_ENDPOINT");
    if std::env::var("TEST_S3_ENDPOINT").is_ok_and(|u| !u.is_empty()) {
        println!("cargo::rustc-cfg=kopilka_s3_tests");
    }
}

//! Whether the PostgreSQL variants of the tests run is decided when the tests are built, so a
//! run without `TEST_POSTGRES_URL` reports them as ignored (with the reason) instead of
//! passing them without running anything.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(kopilka_postgres_tests)");
    println!("cargo::rerun-if-env-changed=TEST_POSTGRES_URL");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        println!("cargo::rustc-cfg=kopilka_postgres_tests");
    }
}

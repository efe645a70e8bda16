// `sqlx::migrate!` embeds the migration files at compile time but cannot see a new file being
// added: without this the binary would silently miss a migration until a clean build. The
// runtime's migrations are its own (`supervision/migrations`); the product's have their own
// build script.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

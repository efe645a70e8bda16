// `sqlx::migrate!` embeds the migration files at compile time but cannot see a new file being
// added: without this the binary would silently miss a migration until a clean build.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}

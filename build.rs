// `sqlx::migrate!` (src/schema.rs) embeds the product's migration files at compile time but
// cannot see a new file being added: without this the library would silently miss a migration
// until a clean build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

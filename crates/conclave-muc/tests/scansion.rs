//! The four seed scripts, replayed against the room state machine: the
//! stanzas each client sends are fed to the service and rooms, and what
//! the rooms emit must match the script (order, recipients, content).
//! The script format and the matching rules are `conclave-scansion`'s.

mod common;

fn script(name: &str) -> String {
    format!("{}/../../tests/scansion/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn seed_muc_password() {
    common::replay(&script("muc_password.scs"), false);
}

#[test]
fn seed_muc_affiliation_notify() {
    common::replay(&script("muc_affiliation_notify.scs"), false);
}

#[test]
fn seed_muc_register() {
    common::replay(&script("muc_register.scs"), false);
}

#[test]
fn seed_muc_register_2018_loose() {
    common::replay(&script("muc_register_2018.scs"), true);
}

#[test]
#[should_panic(expected = "failed")]
fn a_wrong_expectation_fails_the_replay() {
    let text = std::fs::read_to_string(script("muc_register.scs")).unwrap();
    let mutated = text.replace("This nickname is reserved", "This nickname is free");
    assert_ne!(text, mutated);
    let path =
        std::env::temp_dir().join(format!("muc_register_mutated_{}.scs", std::process::id()));
    std::fs::write(&path, mutated).unwrap();
    common::replay(path.to_str().unwrap(), false);
}

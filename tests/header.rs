//! The committed header is the one the source generates (build.rs runs the pinned cbindgen).
//! To update it after changing the C surface: `SCM_UPDATE_HEADER=1 cargo test --test header`.

const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/scardmanage.h"));
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include/scardmanage.h");

#[test]
fn committed_header_matches_the_source() {
    if std::env::var_os("SCM_UPDATE_HEADER").is_some() {
        std::fs::write(COMMITTED, GENERATED).expect("include/ is writable");
    }
    let committed = std::fs::read_to_string(COMMITTED).expect("include/scardmanage.h is committed");
    assert!(
        committed == GENERATED,
        "include/scardmanage.h differs from what the source generates: \
         run `SCM_UPDATE_HEADER=1 cargo test --test header` and commit the result"
    );
}

#[test]
fn header_uses_only_fixed_width_types() {
    // Strip comments, then look for the types the ABI forbids.
    let code: String =
        GENERATED.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let code = code.split_once("*/").expect("the preamble comment ends").1;
    for forbidden in [" long ", "long)", "DWORD", " bool", "_Bool", "unsigned int", " int "] {
        assert!(!code.contains(forbidden), "the header uses `{forbidden}`");
    }
    for function in [
        "scm_create",
        "scm_release",
        "scm_attach_by_handle",
        "scm_attach_by_ifd",
        "scm_attach_by_ifd_w",
        "scm_attach_by_ifd_ex",
        "scm_reconnect",
        "scm_detach",
        "scm_detach_ex",
        "scm_lock",
        "scm_unlock",
        "scm_status",
        "scm_transmit",
        "scm_get_atr",
        "scm_get_reader_name",
        "scm_get_handle",
        "scm_list_readers",
        "scm_error_message",
        "scm_version",
    ] {
        assert!(code.contains(&format!("{function}(")), "{function} is declared");
    }
}

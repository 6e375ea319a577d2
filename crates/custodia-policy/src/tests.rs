use super::*;
use custodia_core::CollectionSchema;

fn customers() -> CollectionSchema {
    CollectionSchema::from_toml(
        r#"
name = "customers"
[[fields]]
name = "name"
type = "person_name"
level = "C2"
[[fields]]
name = "segment"
type = "string"
level = "C1"
[[fields]]
name = "pin"
type = "string"
level = "C3"
"#,
    )
    .unwrap()
}

fn asker(roles: &[&str], branch: &str, purpose: &str, reason: &str) -> Asker {
    Asker {
        subject: Arc::new(
            Subject {
                kind: SubjectKind::User,
                name: "u".into(),
                roles: roles.iter().map(|s| s.to_string()).collect(),
                branch: branch.into(),
                clearance: Tier::High,
                purposes: vec![purpose.into()],
                compliant: true,
                mfa: true,
                grants: vec![],
                collections: vec![],
            }
            .normalized(),
        ),
        context: Arc::new(RequestContext {
            purpose: purpose.into(),
            reason: reason.into(),
            hour: 10,
            weekday: 1,
            client_ip: "127.0.0.1".parse().unwrap(),
        }),
    }
}

use Mode::*;

#[test]
fn default_pack_decides_field_modes() {
    let e = Engine::load(None).unwrap();
    let s = customers();
    let modes = |a: &Asker, tier, branch: &str| e.field_modes(a, &s, 1, tier, branch).to_vec();
    let cs = asker(&["cs_agent"], "b1", "customer_service", "");
    assert_eq!(modes(&cs, Tier::Standard, "b1"), [Masked, Clear, Omitted]);
    let am = asker(&["account_manager"], "b1", "account_service", "");
    assert_eq!(modes(&am, Tier::High, "b1"), [Clear, Clear, Omitted]);
    assert_eq!(modes(&am, Tier::Vip, "b1"), [Masked, Clear, Omitted]);
    assert_eq!(modes(&am, Tier::High, "b2"), [Masked, Clear, Omitted]);
    let admin = asker(&["admin"], "", "administration", "");
    assert_eq!(
        modes(&admin, Tier::Standard, "b1"),
        [Omitted, Omitted, Omitted]
    );
    assert!(e.allows(&admin, Action::ManageUsers, &Target::System));
    assert!(!e.allows(&cs, Action::ManageUsers, &Target::System));
    let co = asker(&["compliance_officer"], "", "dsr", "ticket 7");
    assert_eq!(modes(&co, Tier::Vip, "b9"), [Clear, Clear, Omitted]);
    let co_no_reason = asker(&["compliance_officer"], "", "dsr", "");
    assert_eq!(
        modes(&co_no_reason, Tier::Vip, "b9"),
        [Masked, Masked, Omitted]
    );
    // The cached answer and a fresh one agree.
    assert_eq!(
        e.field_modes_uncached(&am, &s, Tier::Vip, "b1").to_vec(),
        modes(&am, Tier::Vip, "b1")
    );
}

#[test]
fn check_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.cedar"),
        "permit(principal, action, resource);\n\npermit(principal, action == Action::\"read_clear\", resource)\nwhen { resource.nonexistent == 1 };\n",
    )
    .unwrap();
    let (_, problems) = check(Some(dir.path())).unwrap();
    assert!(!problems.is_empty());
    assert_eq!(problems[0].file, "mine.cedar");
    assert!(problems[0].line >= 3, "{:?}", problems);
    std::fs::write(
        dir.path().join("mine.cedar"),
        "permit(principal,\n  action resource);\n",
    )
    .unwrap();
    let (_, problems) = check(Some(dir.path())).unwrap();
    assert_eq!(problems[0].line, 2, "{:?}", problems);
}

#[test]
fn reload_swaps_the_pack_and_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), DEFAULT_POLICIES).unwrap();
    let e = Engine::load(Some(dir.path())).unwrap();
    let s = customers();
    let cs = asker(&["cs_agent"], "b1", "customer_service", "");
    assert_eq!(e.field_modes(&cs, &s, 1, Tier::Standard, "b1")[0], Masked);
    std::fs::write(
        dir.path().join("p.cedar"),
        "permit(principal, action == Action::\"read_clear\", resource);",
    )
    .unwrap();
    e.reload().unwrap();
    assert_eq!(e.field_modes(&cs, &s, 1, Tier::Standard, "b1")[0], Clear);
    // C3 stays omitted whatever a pack says.
    assert_eq!(e.field_modes(&cs, &s, 1, Tier::Standard, "b1")[2], Omitted);
    // A broken pack is refused and the running one stays.
    std::fs::write(dir.path().join("p.cedar"), "permit(").unwrap();
    assert!(e.reload().is_err());
    assert_eq!(e.field_modes(&cs, &s, 1, Tier::Standard, "b1")[0], Clear);
}

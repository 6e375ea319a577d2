//! Who may see what. Custodia asks Cedar (`cedar-policy`) one question per field and
//! action: may this principal, for this declared purpose and reason, do this to this
//! customer's record or field? Cedar answers Allow or Deny, so a field's mode is decided
//! by two actions: clear if `read_clear` is permitted, else masked if `read_masked` is,
//! else omitted. Default deny.
//!
//! Decisions depend on few attributes (the principal's roles, branch, clearance, purposes,
//! compliance and MFA; the purpose, reason, hour, weekday and client address; the record's
//! collection, tier and branch), so they are cached on exactly those attributes. A policy
//! reload swaps the whole pack together with its cache, so no decision made under the old
//! policies survives it.
//!
//! The default pack (`policies/` at the top of the repository) is compiled into the
//! binary; an operator replaces it with a directory of their own `.cedar` files (and
//! optionally a `.cedarschema`). Every pack is validated against the schema before use.
#![forbid(unsafe_code)]

pub mod quota;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use custodia_core::{CollectionSchema, Level, Tier};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

/// The schema every policy pack is validated against.
pub const DEFAULT_SCHEMA: &str = include_str!("../../../policies/custodia.cedarschema");
/// The default policy pack.
pub const DEFAULT_POLICIES: &str = include_str!("../../../policies/default.cedar");

/// How a field is returned to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Clear,
    Masked,
    Omitted,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Clear => "clear",
            Mode::Masked => "masked",
            Mode::Omitted => "omitted",
        }
    }
}

/// Record-, collection- and system-level actions (field reads are decided by
/// [`Engine::field_modes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    Verify,
    Search,
    List,
    Export,
    ManageSchema,
    ReadSchema,
    ManageUsers,
    ManageKeys,
    ManagePolicy,
    ReadMetrics,
    ReadAudit,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Verify => "verify",
            Action::Search => "search",
            Action::List => "list",
            Action::Export => "export",
            Action::ManageSchema => "manage_schema",
            Action::ReadSchema => "read_schema",
            Action::ManageUsers => "manage_users",
            Action::ManageKeys => "manage_keys",
            Action::ManagePolicy => "manage_policy",
            Action::ReadMetrics => "read_metrics",
            Action::ReadAudit => "read_audit",
        }
    }
}

/// What kind of principal is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    /// A person (or the bootstrap admin token, a `User` with role `admin`).
    User,
    /// An application with an API key.
    Service,
}

/// The principal's attributes, as policies see them. Sets are kept sorted so that equal
/// principals hash equally in the decision cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subject {
    pub kind: SubjectKind,
    pub name: String,
    pub roles: Vec<String>,
    pub branch: String,
    pub clearance: Tier,
    pub purposes: Vec<String>,
    pub compliant: bool,
    pub mfa: bool,
    pub grants: Vec<String>,
    pub collections: Vec<String>,
}

impl Subject {
    pub fn normalized(mut self) -> Subject {
        for v in [
            &mut self.roles,
            &mut self.purposes,
            &mut self.grants,
            &mut self.collections,
        ] {
            v.sort();
            v.dedup();
        }
        self
    }

    pub fn may_use_purpose(&self, purpose: &str) -> bool {
        self.purposes.iter().any(|p| p == purpose)
    }
}

/// The request's context.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestContext {
    pub purpose: String,
    /// The stated reason, trimmed; empty when none was given.
    pub reason: String,
    pub hour: u8,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    pub client_ip: IpAddr,
}

/// A principal asking in a context: the first half of every decision key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Asker {
    pub subject: Arc<Subject>,
    pub context: Arc<RequestContext>,
}

/// What an action is done to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Record {
        collection: String,
        tier: Tier,
        branch: String,
    },
    Collection(String),
    System,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
}

/// One problem in a policy pack, located in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// A parsed and validated policy pack with its own decision cache.
pub struct Pack {
    /// For each action, only the policies whose action scope can match it: Cedar
    /// evaluates every policy of a set, so slicing by action divides the work.
    by_action: HashMap<String, PolicySet>,
    /// Policies for actions not sliced above (none in the shipped schema).
    policies: PolicySet,
    /// Where each policy came from (policy id → file), for reporting.
    pub files: Vec<String>,
    pub policy_count: usize,
    fields: RwLock<HashMap<FieldKey, Arc<[Mode]>>>,
    actions: RwLock<HashMap<ActionKey, bool>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct FieldKey {
    asker: Asker,
    collection: String,
    schema_version: i64,
    tier: Tier,
    branch: String,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct ActionKey {
    asker: Asker,
    action: Action,
    target: Target,
}

/// Decision caches are dropped wholesale beyond this many entries (they refill quickly:
/// a few hundred principals × purposes × tiers × branches).
const CACHE_LIMIT: usize = 100_000;

/// The policy decision point: the current pack, replaced atomically on reload.
pub struct Engine {
    dir: Option<PathBuf>,
    pack: RwLock<Arc<Pack>>,
    authorizer: Authorizer,
    /// Per asker: its principal entity and context, independent of the policies.
    prepared: RwLock<HashMap<Asker, Arc<Prepared>>>,
    reloads: std::sync::atomic::AtomicU64,
}

struct Prepared {
    principal: Entity,
    principal_uid: EntityUid,
    context: Context,
}

impl Engine {
    /// Loads the default pack, or the operator's pack from `dir`.
    pub fn load(dir: Option<&Path>) -> Result<Engine, PolicyError> {
        let pack = load_pack(dir)?;
        Ok(Engine {
            dir: dir.map(Path::to_path_buf),
            pack: RwLock::new(Arc::new(pack)),
            authorizer: Authorizer::new(),
            prepared: RwLock::new(HashMap::new()),
            reloads: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Re-reads the policy files. On error the running pack stays in force.
    pub fn reload(&self) -> Result<usize, PolicyError> {
        let pack = load_pack(self.dir.as_deref())?;
        let n = pack.policy_count;
        *self.pack.write().expect("policy lock") = Arc::new(pack);
        self.reloads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    /// Successful reloads since start (API, CLI or SIGHUP).
    pub fn reloads(&self) -> u64 {
        self.reloads.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn pack(&self) -> Arc<Pack> {
        self.pack.read().expect("policy lock").clone()
    }

    /// Where the pack comes from: a directory, or `built-in`.
    pub fn source(&self) -> String {
        self.dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "built-in".to_string())
    }

    /// Whether `asker` may do `action` to `target`.
    pub fn allows(&self, asker: &Asker, action: Action, target: &Target) -> bool {
        let pack = self.pack();
        let key = ActionKey {
            asker: asker.clone(),
            action,
            target: target.clone(),
        };
        if let Some(d) = pack.actions.read().expect("cache lock").get(&key) {
            return *d;
        }
        let d = self.decide_action(&pack, asker, action, target);
        let mut cache = pack.actions.write().expect("cache lock");
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, d);
        d
    }

    /// Decides an action without the cache (benchmarks measure this).
    pub fn decide_uncached(&self, asker: &Asker, action: Action, target: &Target) -> bool {
        self.decide_action(&self.pack(), asker, action, target)
    }

    fn decide_action(&self, pack: &Pack, asker: &Asker, action: Action, target: &Target) -> bool {
        let Some(prepared) = self.prepared(asker) else {
            return false;
        };
        let mut entities = vec![prepared.principal.clone()];
        let resource = match target {
            Target::Record {
                collection,
                tier,
                branch,
            } => {
                let (uid, e) = record_entity(collection, *tier, branch);
                entities.push(e);
                uid
            }
            Target::Collection(name) => {
                let uid = uid("Collection", name);
                entities.push(
                    Entity::new(
                        uid.clone(),
                        HashMap::from([(
                            "name".to_string(),
                            RestrictedExpression::new_string(name.clone()),
                        )]),
                        HashSet::new(),
                    )
                    .expect("collection entity"),
                );
                uid
            }
            Target::System => uid("System", "custodia"),
        };
        let entities = match Entities::from_entities(entities, None) {
            Ok(e) => e,
            Err(_) => return false,
        };
        self.is_allowed(pack, &prepared, action.as_str(), &resource, &entities)
    }

    fn is_allowed(
        &self,
        pack: &Pack,
        prepared: &Prepared,
        action: &str,
        resource: &EntityUid,
        entities: &Entities,
    ) -> bool {
        let Ok(request) = Request::new(
            prepared.principal_uid.clone(),
            uid("Action", action),
            resource.clone(),
            prepared.context.clone(),
            None,
        ) else {
            return false;
        };
        let set = pack.by_action.get(action).unwrap_or(&pack.policies);
        self.authorizer
            .is_authorized(&request, set, entities)
            .decision()
            == Decision::Allow
    }

    /// The asker's principal entity and request context, built once per asker.
    fn prepared(&self, asker: &Asker) -> Option<Arc<Prepared>> {
        if let Some(p) = self.prepared.read().expect("cache lock").get(asker) {
            return Some(p.clone());
        }
        let (principal, principal_uid) = principal_entity(&asker.subject);
        let p = Arc::new(Prepared {
            principal,
            principal_uid,
            context: context_of(&asker.context)?,
        });
        let mut cache = self.prepared.write().expect("cache lock");
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(asker.clone(), p.clone());
        Some(p)
    }

    /// The mode of every field of `schema` (same order) for a record with these attributes.
    /// C3 fields are always omitted, whatever the policies say.
    pub fn field_modes(
        &self,
        asker: &Asker,
        schema: &CollectionSchema,
        schema_version: i64,
        tier: Tier,
        branch: &str,
    ) -> Arc<[Mode]> {
        let pack = self.pack();
        let key = FieldKey {
            asker: asker.clone(),
            collection: schema.name.clone(),
            schema_version,
            tier,
            branch: branch.to_string(),
        };
        if let Some(m) = pack.fields.read().expect("cache lock").get(&key) {
            return m.clone();
        }
        let modes = self.decide_fields(&pack, asker, schema, tier, branch);
        let mut cache = pack.fields.write().expect("cache lock");
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, modes.clone());
        modes
    }

    /// Decides every field without the cache (benchmarks measure this).
    pub fn field_modes_uncached(
        &self,
        asker: &Asker,
        schema: &CollectionSchema,
        tier: Tier,
        branch: &str,
    ) -> Arc<[Mode]> {
        self.decide_fields(&self.pack(), asker, schema, tier, branch)
    }

    fn decide_fields(
        &self,
        pack: &Pack,
        asker: &Asker,
        schema: &CollectionSchema,
        tier: Tier,
        branch: &str,
    ) -> Arc<[Mode]> {
        let Some(prepared) = self.prepared(asker) else {
            return vec![Mode::Omitted; schema.fields.len()].into();
        };
        let (record_uid, record) = record_entity(&schema.name, tier, branch);
        let mut entities = vec![prepared.principal.clone(), record];
        let mut field_uids = Vec::with_capacity(schema.fields.len());
        for def in &schema.fields {
            let fuid = uid("Field", &format!("{}/{}", schema.name, def.name));
            let attrs = HashMap::from([
                (
                    "name".to_string(),
                    RestrictedExpression::new_string(def.name.clone()),
                ),
                (
                    "level".to_string(),
                    RestrictedExpression::new_string(format!("{:?}", def.level)),
                ),
                (
                    "pii_type".to_string(),
                    RestrictedExpression::new_string(def.ty.id().to_string()),
                ),
                (
                    "collection".to_string(),
                    RestrictedExpression::new_string(schema.name.clone()),
                ),
                (
                    "record".to_string(),
                    RestrictedExpression::new_entity_uid(record_uid.clone()),
                ),
            ]);
            match Entity::new(fuid.clone(), attrs, HashSet::new()) {
                Ok(e) => entities.push(e),
                Err(_) => return vec![Mode::Omitted; schema.fields.len()].into(),
            }
            field_uids.push(fuid);
        }
        let Ok(entities) = Entities::from_entities(entities, None) else {
            return vec![Mode::Omitted; schema.fields.len()].into();
        };
        schema
            .fields
            .iter()
            .zip(field_uids)
            .map(|(def, fuid)| {
                if def.level == Level::C3 {
                    return Mode::Omitted;
                }
                let ask = |action: &str| self.is_allowed(pack, &prepared, action, &fuid, &entities);
                if ask("read_clear") {
                    Mode::Clear
                } else if ask("read_masked") {
                    Mode::Masked
                } else {
                    Mode::Omitted
                }
            })
            .collect()
    }
}

/// Entity type names, parsed once (parsing one costs about a microsecond).
fn type_name(ty: &str) -> EntityTypeName {
    static NAMES: std::sync::OnceLock<HashMap<&'static str, EntityTypeName>> =
        std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        [
            "Action",
            "User",
            "Service",
            "Collection",
            "Record",
            "Field",
            "System",
        ]
        .into_iter()
        .map(|t| (t, EntityTypeName::from_str(t).expect("constant type name")))
        .collect()
    });
    names
        .get(ty)
        .cloned()
        .unwrap_or_else(|| EntityTypeName::from_str(ty).expect("entity type names are constants"))
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name(ty), EntityId::new(id))
}

fn tier_number(t: Tier) -> i64 {
    match t {
        Tier::Standard => 1,
        Tier::High => 2,
        Tier::Vip => 3,
    }
}

fn string_set(v: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(
        v.iter()
            .map(|s| RestrictedExpression::new_string(s.clone())),
    )
}

fn principal_entity(s: &Subject) -> (Entity, EntityUid) {
    let (ty, attrs) = match s.kind {
        SubjectKind::User => (
            "User",
            HashMap::from([
                ("roles".to_string(), string_set(&s.roles)),
                (
                    "branch".to_string(),
                    RestrictedExpression::new_string(s.branch.clone()),
                ),
                (
                    "clearance".to_string(),
                    RestrictedExpression::new_long(tier_number(s.clearance)),
                ),
                ("purposes".to_string(), string_set(&s.purposes)),
                (
                    "compliant".to_string(),
                    RestrictedExpression::new_bool(s.compliant),
                ),
                ("mfa".to_string(), RestrictedExpression::new_bool(s.mfa)),
            ]),
        ),
        SubjectKind::Service => (
            "Service",
            HashMap::from([
                ("grants".to_string(), string_set(&s.grants)),
                ("collections".to_string(), string_set(&s.collections)),
                ("purposes".to_string(), string_set(&s.purposes)),
            ]),
        ),
    };
    let u = uid(ty, &s.name);
    let e = Entity::new(u.clone(), attrs, HashSet::new()).expect("principal attributes");
    (e, u)
}

fn record_entity(collection: &str, tier: Tier, branch: &str) -> (EntityUid, Entity) {
    let u = uid("Record", &format!("{collection}/*"));
    let e = Entity::new(
        u.clone(),
        HashMap::from([
            (
                "collection".to_string(),
                RestrictedExpression::new_string(collection.to_string()),
            ),
            (
                "tier".to_string(),
                RestrictedExpression::new_long(tier_number(tier)),
            ),
            (
                "branch".to_string(),
                RestrictedExpression::new_string(branch.to_string()),
            ),
        ]),
        HashSet::new(),
    )
    .expect("record attributes");
    (u, e)
}

fn context_of(c: &RequestContext) -> Option<Context> {
    Context::from_pairs([
        (
            "purpose".to_string(),
            RestrictedExpression::new_string(c.purpose.clone()),
        ),
        (
            "reason".to_string(),
            RestrictedExpression::new_string(c.reason.clone()),
        ),
        (
            "hour".to_string(),
            RestrictedExpression::new_long(c.hour as i64),
        ),
        (
            "weekday".to_string(),
            RestrictedExpression::new_long(c.weekday as i64),
        ),
        (
            "client_ip".to_string(),
            RestrictedExpression::new_ip(c.client_ip.to_string()),
        ),
    ])
    .ok()
}

/// The files of a pack: `(file name, text)` of the schema and of every policy file.
struct Sources {
    schema: (String, String),
    policies: Vec<(String, String)>,
}

fn read_sources(dir: Option<&Path>) -> Result<Sources, PolicyError> {
    let Some(dir) = dir else {
        return Ok(Sources {
            schema: ("custodia.cedarschema".into(), DEFAULT_SCHEMA.into()),
            policies: vec![("default.cedar".into(), DEFAULT_POLICIES.into())],
        });
    };
    let io = |p: &Path, e: std::io::Error| PolicyError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut schema = None;
    let mut policies = vec![];
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name.ends_with(".cedarschema") {
            if schema.is_some() {
                return Err(PolicyError::Invalid(format!(
                    "{}: more than one .cedarschema file",
                    dir.display()
                )));
            }
            schema = Some((name, std::fs::read_to_string(&p).map_err(|e| io(&p, e))?));
        } else if name.ends_with(".cedar") {
            policies.push((name, std::fs::read_to_string(&p).map_err(|e| io(&p, e))?));
        }
    }
    if policies.is_empty() {
        return Err(PolicyError::Invalid(format!(
            "{}: no .cedar policy files",
            dir.display()
        )));
    }
    Ok(Sources {
        schema: schema.unwrap_or_else(|| ("custodia.cedarschema".into(), DEFAULT_SCHEMA.into())),
        policies,
    })
}

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn diagnostics_of(file: &str, text: &str, d: &dyn miette::Diagnostic) -> Vec<Diagnostic> {
    let mut message = d.to_string();
    if let Some(help) = d.help() {
        message = format!("{message} ({help})");
    }
    let mut out = vec![];
    let mut related = false;
    if let Some(rel) = d.related() {
        for r in rel {
            related = true;
            out.extend(diagnostics_of(file, text, r));
        }
    }
    if related && !out.is_empty() {
        return out;
    }
    let offset = d
        .labels()
        .and_then(|mut l| l.next())
        .map(|l| l.offset())
        .unwrap_or(0);
    let (line, column) = line_col(text, offset);
    out.push(Diagnostic {
        file: file.to_string(),
        line,
        column,
        message,
    });
    out
}

/// Every action of the shipped schema (operators' schemas may add more; those are decided
/// against the whole pack).
const ACTIONS: &[&str] = &[
    "read_clear",
    "read_masked",
    "read",
    "create",
    "update",
    "delete",
    "verify",
    "search",
    "list",
    "export",
    "manage_schema",
    "read_schema",
    "manage_users",
    "manage_keys",
    "manage_policy",
    "read_metrics",
    "read_audit",
];

fn slice_by_action(set: &PolicySet) -> HashMap<String, PolicySet> {
    use cedar_policy::ActionConstraint;
    let known: Vec<EntityUid> = ACTIONS.iter().map(|a| uid("Action", a)).collect();
    let mut out: HashMap<String, PolicySet> = ACTIONS
        .iter()
        .map(|a| (a.to_string(), PolicySet::new()))
        .collect();
    for p in set.policies() {
        let targets: Vec<&str> = match p.action_constraint() {
            ActionConstraint::Any => ACTIONS.to_vec(),
            ActionConstraint::Eq(a) => vec_of(&known, std::slice::from_ref(&a)),
            ActionConstraint::In(list) => vec_of(&known, &list),
        };
        for a in targets {
            if let Some(slice) = out.get_mut(a) {
                // Ids are unique in `set`, so adding cannot fail.
                let _ = slice.add(p.clone());
            }
        }
    }
    out
}

/// The known actions a constraint names; all of them if it names an unknown one (an
/// action group of an operator's schema could contain any action).
fn vec_of(known: &[EntityUid], named: &[EntityUid]) -> Vec<&'static str> {
    if named.iter().any(|n| !known.contains(n)) {
        return ACTIONS.to_vec();
    }
    ACTIONS
        .iter()
        .zip(known)
        .filter(|(_, k)| named.contains(k))
        .map(|(a, _)| *a)
        .collect()
}

/// Parses and validates a pack; returns every problem found, located by file and line.
pub fn check(dir: Option<&Path>) -> Result<(usize, Vec<Diagnostic>), PolicyError> {
    let sources = read_sources(dir)?;
    Ok(match compile(&sources) {
        Ok(pack) => (pack.policy_count, vec![]),
        Err(d) => (0, d),
    })
}

fn load_pack(dir: Option<&Path>) -> Result<Pack, PolicyError> {
    let sources = read_sources(dir)?;
    compile(&sources).map_err(|d| {
        PolicyError::Invalid(
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

fn compile(sources: &Sources) -> Result<Pack, Vec<Diagnostic>> {
    let (schema_file, schema_text) = &sources.schema;
    let schema = match Schema::from_cedarschema_str(schema_text) {
        Ok((s, _warnings)) => s,
        Err(e) => return Err(diagnostics_of(schema_file, schema_text, &e)),
    };
    let mut set = PolicySet::new();
    let mut files = vec![];
    let mut origin: HashMap<PolicyId, usize> = HashMap::new();
    let mut problems = vec![];
    for (fi, (file, text)) in sources.policies.iter().enumerate() {
        files.push(file.clone());
        let parsed = match PolicySet::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                problems.extend(diagnostics_of(file, text, &e));
                continue;
            }
        };
        if parsed.templates().next().is_some() {
            problems.push(Diagnostic {
                file: file.clone(),
                line: 1,
                column: 1,
                message: "policy templates are not supported; write static policies".into(),
            });
            continue;
        }
        for (i, p) in parsed.policies().enumerate() {
            let stem = file.trim_end_matches(".cedar");
            let name = match p.annotation("id") {
                Some(id) => format!("{stem}/{id}"),
                None => format!("{stem}/{i}"),
            };
            let id = PolicyId::new(&name);
            if let Err(e) = set.add(p.new_id(id.clone())) {
                let offset = p
                    .annotation("id")
                    .and_then(|id| text.rfind(&format!("@id(\"{id}\")")))
                    .unwrap_or(0);
                let (line, column) = line_col(text, offset);
                problems.push(Diagnostic {
                    file: file.clone(),
                    line,
                    column,
                    message: format!("{e} (policy ids come from @id annotations)"),
                });
            }
            origin.insert(id, fi);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let result = Validator::new(schema).validate(&set, ValidationMode::Strict);
    for e in result.validation_errors() {
        let fi = origin.get(e.policy_id()).copied().unwrap_or(0);
        let (file, text) = &sources.policies[fi];
        problems.extend(diagnostics_of(file, text, e));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Pack {
        policy_count: set.policies().count(),
        by_action: slice_by_action(&set),
        policies: set,
        files,
        fields: RwLock::new(HashMap::new()),
        actions: RwLock::new(HashMap::new()),
    })
}

#[cfg(test)]
mod tests;

/// Phase timings of one decision, for `custodia bench policy` (ns: entities, context and
/// request, authorization).
#[doc(hidden)]
pub fn profile_decision(engine: &Engine, asker: &Asker, target: &Target, n: usize) -> [u128; 3] {
    let pack = engine.pack();
    let mut t = [0u128; 3];
    for _ in 0..n {
        let s = std::time::Instant::now();
        let prepared = engine.prepared(asker).expect("prepared");
        let (ruid, r) = match target {
            Target::Record {
                collection,
                tier,
                branch,
            } => record_entity(collection, *tier, branch),
            _ => unreachable!("profile with a record target"),
        };
        let entities =
            Entities::from_entities([prepared.principal.clone(), r], None).expect("entities");
        t[0] += s.elapsed().as_nanos();
        let s = std::time::Instant::now();
        let req = Request::new(
            prepared.principal_uid.clone(),
            uid("Action", "read"),
            ruid,
            prepared.context.clone(),
            None,
        )
        .expect("request");
        t[1] += s.elapsed().as_nanos();
        let s = std::time::Instant::now();
        let set = pack.by_action.get("read").expect("read slice");
        std::hint::black_box(engine.authorizer.is_authorized(&req, set, &entities));
        t[2] += s.elapsed().as_nanos();
    }
    t.map(|x| x / n as u128)
}

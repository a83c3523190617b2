//! The few facts of an nftables ruleset the checks need, read from `nft -j list ruleset`
//! (libnftables-json(5), as nft 1.0.6 writes it): tables, sets and maps (type, flags, size),
//! chains (hook, priority), and per rule its queue statement, port matches, set references,
//! `ct helper` assignment and jumps.
//!
//! Owns nothing else: what the facts mean is `check::firewall`'s. Untrusted text: anything
//! that is not the expected shape is skipped, and JSON that does not parse is an `Err`.
//! Rules that iptables-nft wrote (`xt` expressions) are read from `iptables-save` instead
//! (`check::iptables`), since nft's JSON does not show their options.

use serde_json::Value;

use crate::check::chains;
use crate::check::matches::Matches;

/// A ruleset's facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Tables as (family, name).
    pub tables: Vec<(String, String)>,
    /// Sets and maps.
    pub sets: Vec<Set>,
    /// Chains.
    pub chains: Vec<Chain>,
    /// Rules.
    pub rules: Vec<Rule>,
    /// `ct helper` objects as (family, table, name, helper type).
    pub helpers: Vec<(String, String, String, String)>,
}

/// A set or map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// Family and table.
    pub family: String,
    /// Table.
    pub table: String,
    /// Name.
    pub name: String,
    /// Key type, fields joined by " . ".
    pub key: String,
    /// `flags timeout`.
    pub timeout_flag: bool,
    /// `size`, when given.
    pub size: Option<u64>,
    /// True for a map.
    pub is_map: bool,
}

/// A chain; base chains have a hook and priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Family.
    pub family: String,
    /// Table.
    pub table: String,
    /// Name.
    pub name: String,
    /// Hook and priority of a base chain.
    pub hook: Option<(String, i64)>,
}

/// A rule's facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// Family.
    pub family: String,
    /// Table.
    pub table: String,
    /// Chain.
    pub chain: String,
    /// Handle.
    pub handle: u64,
    /// Its `queue` statement, `tcp`/`th` port matches, `@set` lookups, `delete @set`
    /// statements and `ct helper set` object.
    pub matches: Matches,
    /// Maps a `dnat` statement reads.
    pub dnat_maps: Vec<String>,
    /// Chains it jumps or goes to.
    pub jumps: Vec<String>,
}

/// Read `nft -j list ruleset` output.
pub fn parse(text: &str) -> Result<Ruleset, String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("not nft JSON: {e}"))?;
    let items = root
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("not nft JSON: no \"nftables\" array")?;
    let mut ruleset = Ruleset::default();
    for item in items {
        let Some((kind, body)) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        match kind.as_str() {
            "table" => ruleset
                .tables
                .push((text_of(body, "family"), text_of(body, "name"))),
            "set" | "map" => ruleset.sets.push(set(body, kind == "map")),
            "chain" => ruleset.chains.push(chain(body)),
            "rule" => ruleset.rules.push(rule(body)),
            "ct helper" => ruleset.helpers.push((
                text_of(body, "family"),
                text_of(body, "table"),
                text_of(body, "name"),
                text_of(body, "type"),
            )),
            _ => {}
        }
    }
    Ok(ruleset)
}

impl Ruleset {
    /// True when table `inet name` exists.
    pub fn has_table(&self, family: &str, name: &str) -> bool {
        self.tables.iter().any(|(f, n)| f == family && n == name)
    }

    /// The set or map `name` of table `inet table`.
    pub fn set(&self, table: &str, name: &str) -> Option<&Set> {
        self.sets
            .iter()
            .find(|s| s.family == "inet" && s.table == table && s.name == name)
    }

    /// The hooks (name, priority) of the base chains from which `rule`'s chain is reached
    /// through jumps and gotos (empty: never evaluated).
    pub fn hooks_of(&self, rule: &Rule) -> Vec<(String, i64)> {
        let same_table = |c: &Chain| c.family == rule.family && c.table == rule.table;
        let mut hooks = Vec::new();
        for base in self.chains.iter().filter(|c| same_table(c)) {
            let Some(hook) = &base.hook else { continue };
            if self.reaches(&rule.family, &rule.table, &base.name, &rule.chain) {
                hooks.push(hook.clone());
            }
        }
        hooks
    }

    /// True when chain `to` is `from` or reached from it by jumps.
    fn reaches(&self, family: &str, table: &str, from: &str, to: &str) -> bool {
        chains::reaches(from, to, |chain| {
            self.rules
                .iter()
                .filter(|r| r.family == family && r.table == table && r.chain == chain)
                .flat_map(|r| r.jumps.iter().map(String::as_str))
                .collect()
        })
    }
}

fn text_of(body: &Value, key: &str) -> String {
    body.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn set(body: &Value, is_map: bool) -> Set {
    let key = match body.get("type") {
        Some(Value::Array(fields)) => fields
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" . "),
        Some(Value::String(one)) => one.clone(),
        _ => String::new(),
    };
    let flags = strings(body.get("flags"));
    Set {
        family: text_of(body, "family"),
        table: text_of(body, "table"),
        name: text_of(body, "name"),
        key,
        timeout_flag: flags.iter().any(|f| f == "timeout"),
        size: body.get("size").and_then(Value::as_u64),
        is_map,
    }
}

fn chain(body: &Value) -> Chain {
    let hook = body
        .get("hook")
        .and_then(Value::as_str)
        .map(|hook| (hook.to_owned(), priority(body.get("prio"))));
    Chain {
        family: text_of(body, "family"),
        table: text_of(body, "table"),
        name: text_of(body, "name"),
        hook,
    }
}

/// A chain priority: a number, or nft's name for one (nft 1.0.6 writes numbers).
fn priority(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(name)) => match name.as_str() {
            "raw" => -300,
            "mangle" => -150,
            "dstnat" => -100,
            "security" => 50,
            "srcnat" => 100,
            _ => 0,
        },
        _ => 0,
    }
}

fn rule(body: &Value) -> Rule {
    let mut rule = Rule {
        family: text_of(body, "family"),
        table: text_of(body, "table"),
        chain: text_of(body, "chain"),
        handle: body.get("handle").and_then(Value::as_u64).unwrap_or(0),
        ..Rule::default()
    };
    let statements = body.get("expr").and_then(Value::as_array);
    for statement in statements.into_iter().flatten() {
        read_statement(&mut rule, statement);
    }
    rule
}

fn read_statement(rule: &mut Rule, statement: &Value) {
    // nft 1.0.6 writes statements it has no JSON for as their text ("delete @dnat4 {...}").
    if let Some(text) = statement.as_str() {
        if let Some(rest) = text.strip_prefix("delete @") {
            rule.matches
                .deletes
                .push(rest.split_whitespace().next().unwrap_or("").to_owned());
        }
        return;
    }
    let Some((kind, body)) = statement.as_object().and_then(|o| o.iter().next()) else {
        return;
    };
    match kind.as_str() {
        "match" => read_match(rule, body),
        "queue" => rule.matches.queue = Some(queue(body)),
        "set" if body.get("op").and_then(Value::as_str) == Some("delete") => {
            rule.matches.deletes.extend(references(body));
        }
        "dnat" => rule.dnat_maps.extend(references(body)),
        "ct helper" => rule.matches.helper = body.as_str().map(str::to_owned),
        "jump" | "goto" => rule.jumps.push(text_of(body, "target")),
        _ => {}
    }
}

fn read_match(rule: &mut Rule, body: &Value) {
    let right = body.get("right");
    if let Some(name) = right
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('@'))
    {
        rule.matches.lookups.push(name.to_owned());
        return;
    }
    if body.get("op").and_then(Value::as_str) == Some("!=") {
        return;
    }
    let field = body
        .get("left")
        .and_then(|l| l.get("payload"))
        .filter(|p| matches!(text_of(p, "protocol").as_str(), "tcp" | "th"))
        .map(|p| text_of(p, "field"));
    let ports = right.and_then(port_ranges);
    match (field.as_deref(), ports) {
        (Some("dport"), Some(ports)) => rule.matches.dport = Some(ports),
        (Some("sport"), Some(ports)) => rule.matches.sport = Some(ports),
        _ => {}
    }
}

/// A port, a `{"range": [a, b]}`, or a `{"set": [...]}` of those, as ranges.
fn port_ranges(value: &Value) -> Option<Vec<(u16, u16)>> {
    let port = |v: &Value| v.as_u64().and_then(|p| u16::try_from(p).ok());
    if let Some(p) = port(value) {
        return Some(vec![(p, p)]);
    }
    if let Some([a, b]) = value
        .get("range")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return Some(vec![(port(a)?, port(b)?)]);
    }
    let members = value.get("set").and_then(Value::as_array)?;
    let mut ranges = Vec::new();
    for member in members {
        ranges.extend(port_ranges(member)?);
    }
    Some(ranges)
}

/// A queue statement: `{"num": N | {"range": [a, b]}, "flags": "bypass" | [...]}` (no num:
/// queue 0).
fn queue(body: &Value) -> (u16, u16, bool) {
    let (first, last) = body
        .get("num")
        .and_then(port_ranges)
        .and_then(|r| r.first().copied())
        .unwrap_or((0, 0));
    let bypass = strings(body.get("flags")).iter().any(|f| f == "bypass");
    (first, last, bypass)
}

/// A string or an array of strings.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(all)) => all
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Every `@name` string inside `value`, without the `@`.
fn references(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.strip_prefix('@').map(str::to_owned).into_iter().collect(),
        Value::Array(all) => all.iter().flat_map(references).collect(),
        Value::Object(map) => map.values().flat_map(references).collect(),
        _ => Vec::new(),
    }
}

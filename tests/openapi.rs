//! The API document as integrators read it (ADR 0024), checked on the document the code builds:
//! unique operation ids, a summary and a description per operation, typed answers, the shared
//! error body with its codes, enums where the API has a closed set of values, typed query
//! parameters. scripts/openapi.sh checks the served document with the validators and generated
//! clients; this is the fast, offline part.

use std::collections::{BTreeMap, BTreeSet};

use neuronx::control::Role;
use neuronx_actors::domain::opportunity::Stage;
use serde_json::Value;

/// Operations allowed to fail the per-operation checks for now: none. Kept so an operation
/// added in a hurry can be listed (and the test then insists it leaves the list once fixed).
const PENDING: &[&str] = &[];

/// Properties whose values are free-form objects by nature: a timeline entry's or call
/// event's details, the inputs a rule weighed, a dead letter's input, an audit entry's object
/// before and after.
const FREE_FORM: &[&str] = &["data", "inputs", "input", "before", "after"];

fn document() -> Value {
    serde_json::to_value(neuronx::http::openapi_document()).expect("the document serializes")
}

/// Every operation as `METHOD /path`, with its object.
fn operations(doc: &Value) -> BTreeMap<String, Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            ops.insert(format!("{} {path}", method.to_uppercase()), op.clone());
        }
    }
    ops
}

/// The schema a `$ref` names, or the schema itself.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .expect("a component ref");
            let found = &doc["components"]["schemas"][name];
            assert!(found.is_object(), "{r} is not in the document");
            found
        }
        None => schema,
    }
}

fn is_object_type(schema: &Value) -> bool {
    match &schema["type"] {
        Value::String(t) => t == "object",
        Value::Array(ts) => ts.iter().any(|t| t == "object"),
        _ => false,
    }
}

/// Where, under `schema`, an object has no properties (a client gets no fields), outside the
/// free-form properties.
fn untyped(
    doc: &Value,
    schema: &Value,
    at: &str,
    seen: &mut BTreeSet<String>,
    out: &mut Vec<String>,
) {
    if let Some(r) = schema["$ref"].as_str() {
        if !seen.insert(r.to_owned()) {
            return;
        }
    }
    let schema = resolve(doc, schema);
    let composed = ["allOf", "oneOf", "anyOf"]
        .iter()
        .filter_map(|k| schema[*k].as_array())
        .flatten();
    let mut has_parts = false;
    for part in composed {
        has_parts = true;
        untyped(doc, part, at, seen, out);
    }
    if let Some(props) = schema["properties"].as_object() {
        for (name, prop) in props {
            if !FREE_FORM.contains(&name.as_str()) {
                untyped(doc, prop, &format!("{at}.{name}"), seen, out);
            }
        }
    } else if is_object_type(schema) && !has_parts {
        out.push(format!("{at} is an object without properties"));
    }
    if schema["items"].is_object() {
        untyped(doc, &schema["items"], &format!("{at}[]"), seen, out);
    }
}

/// What keeps an operation from being documented as an integrator needs it.
fn problems(doc: &Value, op: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for field in ["operationId", "summary", "description"] {
        if op[field].as_str().is_none_or(|s| s.trim().is_empty()) {
            out.push(format!("no {field}"));
        }
    }
    // A camelCase id reads as a method name in every generated client.
    if let Some(id) = op["operationId"].as_str() {
        if id.contains('_') || !id.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.push(format!("operationId {id:?} is not camelCase"));
        }
    }
    let responses = op["responses"].as_object().expect("responses");
    for (status, response) in responses.iter().filter(|(s, _)| s.starts_with('2')) {
        let Some(content) = response["content"].as_object() else {
            out.push(format!("{status} has no content"));
            continue;
        };
        for (media, body) in content {
            untyped(
                doc,
                &body["schema"],
                &format!("{status} {media}"),
                &mut BTreeSet::new(),
                &mut out,
            );
        }
    }
    for p in op["parameters"].as_array().into_iter().flatten() {
        let want = match p["name"].as_str() {
            Some("limit") => "integer",
            Some("paused") => "boolean",
            _ => continue,
        };
        if p["schema"]["type"] != want {
            out.push(format!(
                "query {} is not {want}: {}",
                p["name"], p["schema"]
            ));
        }
    }
    out
}

#[test]
fn operation_ids_are_unique() {
    let doc = document();
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .expect("every operation has an id");
        ids.entry(id.to_owned()).or_default().push(name);
    }
    let repeated: Vec<_> = ids.iter().filter(|(_, ops)| ops.len() > 1).collect();
    assert!(
        repeated.is_empty(),
        "operation ids used twice: {repeated:?}"
    );
}

#[test]
fn every_operation_has_an_id_a_summary_a_description_and_typed_answers() {
    let doc = document();
    let ops = operations(&doc);
    let mut failures = Vec::new();
    for (name, op) in &ops {
        let found = problems(&doc, op);
        match (PENDING.contains(&name.as_str()), found.is_empty()) {
            (false, false) => failures.push(format!("{name}: {}", found.join("; "))),
            (true, true) => failures.push(format!(
                "{name} is documented now: remove it from PENDING in tests/openapi.rs"
            )),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_v1_error_answer_is_the_error_body_with_its_code() {
    let doc = document();
    for (name, op) in operations(&doc).iter().filter(|(n, _)| n.contains(" /v1/")) {
        for status in ["400", "401", "403", "404", "409", "413", "429", "503"] {
            let schema = &op["responses"][status]["content"]["application/json"]["schema"];
            assert_eq!(
                schema["$ref"], "#/components/schemas/ErrorBody",
                "{name} {status}"
            );
        }
    }
    let body = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(
        body["properties"]["error"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    for code in [
        "invalid_request",
        "unauthorized",
        "not_found",
        "already_paused",
    ] {
        assert!(
            codes.as_array().expect("an enum").contains(&code.into()),
            "{code}"
        );
    }
}

fn enum_of(doc: &Value, schema: &str) -> Vec<String> {
    doc["components"]["schemas"][schema]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema} is an enum"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn stage_and_role_are_enums_of_the_domains_values() {
    let doc = document();
    let stages: Vec<String> = Stage::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    assert_eq!(enum_of(&doc, "Stage"), stages);
    let roles: Vec<String> = Role::ALL.iter().map(|r| r.as_str().to_owned()).collect();
    assert_eq!(enum_of(&doc, "Role"), roles);
    let stage = "#/components/schemas/Stage";
    let view = &doc["components"]["schemas"]["OpportunityView"];
    assert_eq!(view["properties"]["stage"]["$ref"], stage);
    let list = &operations(&doc)["GET /v1/opportunities"];
    let param = |name: &str| {
        list["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))["schema"]
            .clone()
    };
    assert_eq!(param("stage")["$ref"], stage);
    assert_eq!(param("paused")["type"], "boolean");
    assert_eq!(param("limit")["type"], "integer");
    let filter = &doc["components"]["schemas"]["BulkFilter"]["properties"]["stage"];
    assert!(filter.to_string().contains(stage), "{filter}");
}

#[test]
fn the_document_names_its_server_and_describes_its_tags() {
    let doc = document();
    assert_eq!(doc["servers"][0]["url"], "/");
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .inspect(|t| assert!(t["description"].is_string(), "{t}"))
        .filter_map(|t| t["name"].as_str())
        .collect();
    for (name, op) in operations(&doc) {
        for tag in op["tags"].as_array().expect("tagged") {
            let tag = tag.as_str().expect("a name");
            assert!(tags.contains(tag), "{name}: tag {tag:?} is not declared");
        }
    }
}

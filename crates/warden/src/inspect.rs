//! `warden inspect FILE [--json]`: what a module, component or bundle
//! imports and exports, its policy (a bundle's) and its digest. The JSON
//! schema is in docs/cli.md.

use crate::Failure;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use warden_bundle::{Bundle, CodeKind};
use warden_policy::{format_size, MountSource, Policy, Subsystem};

#[derive(Args)]
pub struct InspectArgs {
    /// A module (.wasm or .wat), a component, or a bundle
    file: PathBuf,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Import {
    /// The module a core import comes from; components have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<String>,
    name: String,
    kind: &'static str,
}

#[derive(Serialize)]
struct Export {
    name: String,
    kind: &'static str,
}

#[derive(Serialize)]
struct CodeReport {
    /// `module` or `component`.
    kind: &'static str,
    digest: String,
    /// For a component: `wasi:cli/command`, `wasi:http/incoming-handler`
    /// or `wasi:http/handler`, from what it exports; else `null`.
    looks_like: Option<&'static str>,
    imports: Vec<Import>,
    exports: Vec<Export>,
}

#[derive(Serialize)]
struct MountReport {
    guest: String,
    digest: String,
    files: u64,
    dirs: u64,
    symlinks: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct Report {
    file: String,
    /// `module`, `component` or `bundle`.
    kind: &'static str,
    /// `sha256:HEX` of the whole file.
    digest: String,
    code: CodeReport,
    /// A bundle's policy, as its canonical form (docs/bundle.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_digest: Option<String>,
    /// A bundle's bundled mounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    mounts: Option<Vec<MountReport>>,
    #[serde(skip)]
    parsed_policy: Option<Policy>,
}

fn core_kind(ty: &wasmparser::TypeRef) -> &'static str {
    use wasmparser::TypeRef;
    match ty {
        TypeRef::Func(_) | TypeRef::FuncExact(_) => "func",
        TypeRef::Table(_) => "table",
        TypeRef::Memory(_) => "memory",
        TypeRef::Global(_) => "global",
        TypeRef::Tag(_) => "tag",
    }
}

fn core_export_kind(kind: wasmparser::ExternalKind) -> &'static str {
    use wasmparser::ExternalKind;
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => "func",
        ExternalKind::Table => "table",
        ExternalKind::Memory => "memory",
        ExternalKind::Global => "global",
        ExternalKind::Tag => "tag",
    }
}

fn component_kind(ty: &wasmparser::ComponentTypeRef) -> &'static str {
    use wasmparser::ComponentTypeRef;
    match ty {
        ComponentTypeRef::Module(_) => "module",
        ComponentTypeRef::Func(_) => "func",
        ComponentTypeRef::Value(_) => "value",
        ComponentTypeRef::Type(_) => "type",
        ComponentTypeRef::Instance(_) => "instance",
        ComponentTypeRef::Component(_) => "component",
    }
}

fn component_export_kind(kind: wasmparser::ComponentExternalKind) -> &'static str {
    use wasmparser::ComponentExternalKind;
    match kind {
        ComponentExternalKind::Module => "module",
        ComponentExternalKind::Func => "func",
        ComponentExternalKind::Value => "value",
        ComponentExternalKind::Type => "type",
        ComponentExternalKind::Instance => "instance",
        ComponentExternalKind::Component => "component",
    }
}

/// The top-level imports and exports of a module or component (not those
/// of the modules and components nested in a component).
fn code_report(kind: CodeKind, bytes: &[u8]) -> Result<CodeReport, String> {
    use wasmparser::{Parser, Payload};
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| e.to_string())?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ImportSection(reader) if depth == 0 => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    imports.push(Import {
                        module: Some(import.module.to_string()),
                        name: import.name.to_string(),
                        kind: core_kind(&import.ty),
                    });
                }
            }
            Payload::ExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| e.to_string())?;
                    exports.push(Export {
                        name: export.name.to_string(),
                        kind: core_export_kind(export.kind),
                    });
                }
            }
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| e.to_string())?;
                    imports.push(Import {
                        module: None,
                        name: import.name.name.to_string(),
                        kind: component_kind(&import.ty),
                    });
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| e.to_string())?;
                    exports.push(Export {
                        name: export.name.name.to_string(),
                        kind: component_export_kind(export.kind),
                    });
                }
            }
            _ => {}
        }
    }
    let exports_interface = |prefix: &str| {
        exports.iter().any(|e| {
            e.name
                .strip_prefix(prefix)
                .is_some_and(|v| v.starts_with('@'))
        })
    };
    let looks_like = match kind {
        CodeKind::Module => None,
        CodeKind::Component if exports_interface("wasi:cli/run") => Some("wasi:cli/command"),
        CodeKind::Component if exports_interface("wasi:http/incoming-handler") => {
            Some("wasi:http/incoming-handler")
        }
        CodeKind::Component if exports_interface("wasi:http/handler") => Some("wasi:http/handler"),
        CodeKind::Component => None,
    };
    Ok(CodeReport {
        kind: kind.name(),
        digest: warden_bundle::sha256_text(bytes),
        looks_like,
        imports,
        exports,
    })
}

fn report(args: &InspectArgs) -> Result<Report, Failure> {
    let path = &args.file;
    let file = path.display().to_string();
    let raw =
        std::fs::read(path).map_err(|e| Failure::bad_input(format!("cannot read {file}: {e}")))?;
    if warden_bundle::is_bundle(&raw) {
        let bundle: Bundle =
            warden_bundle::open(&raw).map_err(|e| Failure::bad_input(format!("{file}: {e}")))?;
        let code = code_report(bundle.kind, &bundle.code)
            .map_err(|e| Failure::bad_input(format!("{file}: its code cannot be read: {e}")))?;
        let mounts = bundle
            .trees
            .iter()
            .map(|(guest, tree)| {
                let c = tree.counts();
                MountReport {
                    guest: guest.clone(),
                    digest: tree.digest(),
                    files: c.files,
                    dirs: c.dirs,
                    symlinks: c.symlinks,
                    bytes: c.bytes,
                }
            })
            .collect();
        let policy: serde_json::Value = serde_json::from_slice(&bundle.policy_bytes)
            .map_err(|e| Failure::host(format!("{file}: {e}")))?;
        return Ok(Report {
            file,
            kind: "bundle",
            digest: bundle.digest.clone(),
            policy_digest: Some(bundle.policy_digest()),
            code,
            policy: Some(policy),
            mounts: Some(mounts),
            parsed_policy: Some(bundle.policy),
        });
    }
    let (kind, bytes) = crate::bundle::code_for_bundle(path)?;
    let code = code_report(kind, &bytes).map_err(|e| Failure::bad_input(format!("{file}: {e}")))?;
    Ok(Report {
        file,
        kind: kind.name(),
        digest: warden_bundle::sha256_text(&raw),
        code,
        policy: None,
        policy_digest: None,
        mounts: None,
        parsed_policy: None,
    })
}

fn count(n: u64, what: &str) -> String {
    match (n, what) {
        (1, _) => format!("1 {what}"),
        (_, "directory") => format!("{n} directories"),
        _ => format!("{n} {what}s"),
    }
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn policy_lines(policy: &Policy, mounts: &[MountReport], out: &mut Vec<String>) {
    let (allowed, denied): (Vec<Subsystem>, Vec<Subsystem>) =
        Subsystem::ALL.into_iter().partition(|s| policy.allows(*s));
    let names = |subs: Vec<Subsystem>| {
        if subs.is_empty() {
            "none".to_string()
        } else {
            subs.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
        }
    };
    out.push(format!("  allow: {}", names(allowed)));
    out.push(format!("  deny: {}", names(denied)));
    let s = &policy.stdio;
    out.push(format!(
        "  stdio: stdin {}, stdout {}, stderr {}",
        s.stdin, s.stdout, s.stderr
    ));
    if !policy.args.is_empty() {
        out.push(format!("  args: {}", quoted(&policy.args)));
    }
    if let Some(e) = &policy.entrypoint {
        out.push(format!("  entrypoint: {e}"));
    }
    for (k, v) in &policy.env {
        out.push(format!("  env: {k}={v:?}"));
    }
    for m in &policy.mounts {
        let what = match &m.source {
            MountSource::Host { path, read_only } => format!(
                "host directory {}{}",
                path.display(),
                if *read_only { ", read-only" } else { "" }
            ),
            MountSource::Virtual { path } => format!("virtual, from {}", path.display()),
            MountSource::Sealed { name } => format!("sealed store namespace `{name}`"),
            MountSource::Bundled { digest } => match mounts.iter().find(|r| r.guest == m.guest) {
                Some(r) => format!(
                    "bundled {digest} ({}, {}, {}, {})",
                    count(r.files, "file"),
                    count(r.dirs, "directory"),
                    count(r.symlinks, "symlink"),
                    format_size(r.bytes)
                ),
                None => format!("bundled {digest}"),
            },
        };
        out.push(format!("  mount {}: {what}", m.guest));
    }
    for a in &policy.listen {
        out.push(format!("  listen: {a}"));
    }
    for r in &policy.net {
        out.push(format!("  net: {r}"));
    }
    for o in &policy.http {
        out.push(format!("  http: {o}"));
    }
    let l = &policy.limits;
    let mut limits = Vec::new();
    if let Some(v) = l.max_memory {
        limits.push(format!("max_memory {}", format_size(v)));
    }
    if let Some(v) = l.max_total_memory {
        limits.push(format!("max_total_memory {}", format_size(v)));
    }
    if let Some(v) = l.max_stack {
        limits.push(format!("max_stack {}", format_size(v)));
    }
    if let Some(v) = l.fuel {
        limits.push(format!("fuel {v}"));
    }
    if let Some(v) = l.timeout {
        limits.push(format!("timeout {v:?}"));
    }
    if let Some(v) = l.max_processes {
        limits.push(format!("max_processes {v}"));
    }
    if let Some(v) = l.max_threads {
        limits.push(format!("max_threads {v}"));
    }
    out.push(format!(
        "  limits: {}",
        if limits.is_empty() {
            "none".into()
        } else {
            limits.join(", ")
        }
    ));
}

fn text(r: &Report) -> String {
    let mut out = vec![
        format!("file: {}", r.file),
        format!("kind: {}", r.kind),
        format!("digest: {}", r.digest),
    ];
    if r.kind == "bundle" {
        out.push(format!("code: {} {}", r.code.kind, r.code.digest));
    }
    if let Some(world) = r.code.looks_like {
        let by = r
            .code
            .exports
            .iter()
            .map(|e| e.name.as_str())
            .find(|n| {
                n.starts_with("wasi:cli/run@")
                    || n.starts_with("wasi:http/incoming-handler@")
                    || n.starts_with("wasi:http/handler@")
            })
            .unwrap_or("");
        out.push(format!("looks like: {world} (exports {by})"));
    }
    out.push(format!("imports: {}", r.code.imports.len()));
    for i in &r.code.imports {
        match &i.module {
            Some(m) => out.push(format!("  {m}::{} ({})", i.name, i.kind)),
            None => out.push(format!("  {} ({})", i.name, i.kind)),
        }
    }
    out.push(format!("exports: {}", r.code.exports.len()));
    for e in &r.code.exports {
        out.push(format!("  {} ({})", e.name, e.kind));
    }
    match (&r.parsed_policy, &r.policy_digest) {
        (Some(policy), Some(digest)) => {
            out.push(format!("policy: {digest}"));
            policy_lines(policy, r.mounts.as_deref().unwrap_or(&[]), &mut out);
        }
        _ => out.push("policy: none (a config and flags give it when it runs)".into()),
    }
    out.join("\n") + "\n"
}

pub fn run(args: InspectArgs) -> Result<u8, Failure> {
    let r = report(&args)?;
    let output = if args.json {
        serde_json::to_string_pretty(&r).map_err(Failure::host)? + "\n"
    } else {
        text(&r)
    };
    print!("{output}");
    Ok(0)
}

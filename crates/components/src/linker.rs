//! The imports a component gets: wasmtime-wasi's WASI 0.2 and 0.3
//! interfaces as the policy configures them, and in place of the functions
//! of a denied subsystem, functions that stop the guest and say why.

use crate::ctx::Host;
use crate::fs::VfsView;
use std::sync::Arc;
use warden_kernel::note::{Denial, DenialNotes};
use warden_kernel::trace::Tracer;
use warden_policy::{Policy, Subsystem};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasData, Linker, ResourceTable, Val};
use wasmtime::Engine;

/// What a store must give the functions that stand in for a denied
/// subsystem's: where to note the denial and trace the call.
pub trait Denials: Send {
    fn notes(&self) -> &DenialNotes;
    fn tracer(&self) -> Option<&Arc<Tracer>>;
}

impl Denials for Host {
    fn notes(&self) -> &DenialNotes {
        &self.notes
    }
    fn tracer(&self) -> Option<&Arc<Tracer>> {
        self.tracer.as_ref()
    }
}

/// Why a component was stopped by the policy at a call.
#[derive(Debug, thiserror::Error)]
pub enum PolicyStop {
    #[error("guest called `{function}`, but the `{subsystem}` subsystem is denied")]
    Denied {
        subsystem: Subsystem,
        function: String,
    },
    #[error("guest called `{function}`({code}) but the `exit` subsystem is denied")]
    ExitDenied { function: String, code: u32 },
}

/// The interface families a subsystem covers, by name prefix.
fn families(sub: Subsystem) -> &'static [&'static str] {
    match sub {
        Subsystem::Clocks => &["wasi:clocks/"],
        Subsystem::Random => &["wasi:random/"],
        Subsystem::Exit => &["wasi:cli/exit@"],
        _ => &[],
    }
}

/// Every WASI interface warden gives components, with no subsystem
/// denied: the same for every component and policy of an engine, so it is
/// built once ([`crate::Components`] keeps it).
pub fn base(engine: &Engine) -> wasmtime::Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    add_wasi_p2(&mut linker)?;
    add_wasi_p3(&mut linker)?;
    // Outbound HTTP is linked always; the hooks refuse every origin the
    // policy does not list.
    crate::http::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// The interfaces of a denied subsystem that `component` imports: those
/// whose functions [`deny`] replaces.
fn denied_imports(
    engine: &Engine,
    component: &Component,
    policy: &Policy,
) -> Vec<(Subsystem, String)> {
    let denied: Vec<Subsystem> = [Subsystem::Clocks, Subsystem::Random, Subsystem::Exit]
        .into_iter()
        .filter(|s| !policy.allows(*s))
        .collect();
    if denied.is_empty() {
        return Vec::new();
    }
    component
        .component_type()
        .imports(engine)
        .filter_map(|(name, _)| {
            denied
                .iter()
                .find(|s| families(**s).iter().any(|f| name.starts_with(f)))
                .map(|s| (*s, name.to_string()))
        })
        .collect()
}

/// The linker for `component` under `policy`: `base` itself, or, when
/// the component imports from a denied subsystem, a copy whose functions
/// of that subsystem stop the guest.
pub fn for_component<'a, T: Denials + 'static>(
    base: &'a Linker<T>,
    engine: &Engine,
    component: &Component,
    policy: &Policy,
) -> wasmtime::Result<std::borrow::Cow<'a, Linker<T>>> {
    let denied = denied_imports(engine, component, policy);
    if denied.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(base));
    }
    let mut linker = base.clone();
    deny(&mut linker, engine, component, &denied)?;
    Ok(std::borrow::Cow::Owned(linker))
}

/// `wasi:io` over the store's resource table.
struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// WASI 0.2: wasmtime-wasi's interfaces (the list of its
/// `add_to_linker_with_options_async`) except `wasi:filesystem`, which is
/// warden's, over the kernel's VFS ([`crate::fs`]).
pub fn add_wasi_p2<T: VfsView + 'static>(l: &mut Linker<T>) -> wasmtime::Result<()> {
    add_wasi_p2_without_sockets(l)?;
    use wasmtime_wasi::p2::bindings::sockets;
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};
    sockets::tcp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::udp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::udp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::instance_network::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::network::add_to_linker::<T, WasiSockets>(l, &Default::default(), T::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    Ok(())
}

/// [`add_wasi_p2`] without `wasi:sockets` (for `warden serve`'s apps).
pub fn add_wasi_p2_without_sockets<T: VfsView + 'static>(
    l: &mut Linker<T>,
) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, io, random};
    use wasmtime_wasi::random::WasiRandom;
    io::error::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    io::poll::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    io::streams::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    crate::fs::add_to_linker(l)?;
    Ok(())
}

/// WASI 0.3: wasmtime-wasi's interfaces (the list of its
/// `p3::add_to_linker`) except `wasi:filesystem`, which is warden's, over
/// the kernel's VFS and the same table of descriptors as 0.2.
pub fn add_wasi_p3<T: VfsView + 'static>(l: &mut Linker<T>) -> wasmtime::Result<()> {
    add_wasi_p3_without_sockets(l)?;
    wasmtime_wasi::p3::sockets::add_to_linker(l)
}

/// [`add_wasi_p3`] without `wasi:sockets` (for `warden serve`'s apps).
pub fn add_wasi_p3_without_sockets<T: VfsView + 'static>(
    l: &mut Linker<T>,
) -> wasmtime::Result<()> {
    use wasmtime_wasi::p3::{cli, clocks, random};
    cli::add_to_linker(l)?;
    clocks::add_to_linker(l)?;
    random::add_to_linker(l)?;
    crate::fs::add_p3_to_linker(l)?;
    Ok(())
}

/// Replaces each function of the `denied` imports with one that stops
/// the guest, notes the denial and traces it.
fn deny<T: Denials + 'static>(
    linker: &mut Linker<T>,
    engine: &Engine,
    component: &Component,
    denied: &[(Subsystem, String)],
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    for (name, item) in component.component_type().imports(engine) {
        let Some(sub) = denied.iter().find(|(_, n)| n == name).map(|(s, _)| *s) else {
            continue;
        };
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let interface = name.split('@').next().unwrap_or(name).to_string();
        let mut inst = linker.instance(name)?;
        for (func, item) in instance.exports(engine) {
            let ComponentItem::ComponentFunc(ty) = item.ty else {
                continue;
            };
            let function = format!("{interface}#{func}");
            let is_exit = sub == Subsystem::Exit;
            let stop = move |store: &T, params: &[Val]| -> wasmtime::Error {
                store.notes().denied(Denial::Subsystem(sub));
                if let Some(tracer) = store.tracer() {
                    crate::trace::denied(tracer, &function, sub.name());
                }
                if is_exit {
                    wasmtime::Error::new(PolicyStop::ExitDenied {
                        function: function.clone(),
                        code: exit_code(params),
                    })
                } else {
                    wasmtime::Error::new(PolicyStop::Denied {
                        subsystem: sub,
                        function: function.clone(),
                    })
                }
            };
            if ty.async_() {
                inst.func_new_concurrent(func, move |accessor, _ty, params, _results| {
                    let err = accessor.with(|mut access| stop(access.get(), params));
                    Box::pin(async move { Err(err) })
                })?;
            } else {
                inst.func_new(func, move |store, _ty, params, _results| {
                    Err(stop(store.data(), params))
                })?;
            }
        }
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// The status `wasi:cli/exit#exit(result)` or `#exit-with-code(u8)` asks for.
fn exit_code(params: &[Val]) -> u32 {
    match params.first() {
        Some(Val::Result(Ok(_))) => 0,
        Some(Val::Result(Err(_))) => 1,
        Some(Val::U8(code)) => u32::from(*code),
        _ => 1,
    }
}

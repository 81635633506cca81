//! `warden cc -pthread`: threaded C programs come out as modules of the
//! standard wasi-threads ABI (an imported shared memory, the import
//! `wasi::thread-spawn`, the export `wasi_thread_start`). These tests look
//! at the modules only: running them is the runtime's side.

mod support;

use std::path::{Path, PathBuf};
use support::warden;
use wasmparser::{ExternalKind, Parser, Payload, TypeRef, ValType};

/// What `warden cc` left behind.
struct Built {
    code: i32,
    stderr: String,
    module: PathBuf,
    _dir: tempfile::TempDir,
}

/// Compiles `source` (as NAME.c) with `warden cc -pthread ARGS`.
fn cc(name: &str, source: &str, args: &[&str]) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let module = dir.path().join(format!("{name}.wasm"));
    let out = warden()
        .args(["cc", "-pthread", "-O2", "-Wall", "-Werror"])
        .args(args)
        .arg(&src)
        .arg("-o")
        .arg(&module)
        .output()
        .unwrap();
    Built {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        module,
        _dir: dir,
    }
}

type Sig = (Vec<ValType>, Vec<ValType>);

/// The parts of a module these tests look at.
#[derive(Default)]
struct Interface {
    /// `module.name` of every import.
    imports: Vec<String>,
    /// The imported memory: (module.name, shared, maximum in pages).
    memory_import: Option<(String, bool, Option<u64>)>,
    /// Defined memories.
    memories: usize,
    /// Signatures of imported functions, by `module.name`.
    import_sigs: Vec<(String, Sig)>,
    /// Exports: name, kind and, for functions, the signature.
    exports: Vec<(String, ExternalKind, Option<Sig>)>,
}

fn interface(module: &Path) -> Interface {
    let bytes = std::fs::read(module).unwrap();
    let mut types: Vec<Sig> = Vec::new();
    let mut funcs: Vec<u32> = Vec::new();
    let mut iface = Interface::default();
    let mut raw_exports = Vec::new();
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group.unwrap().into_types() {
                        let f = sub.unwrap_func();
                        types.push((f.params().to_vec(), f.results().to_vec()));
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    let name = format!("{}.{}", import.module, import.name);
                    match import.ty {
                        TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                            funcs.push(t);
                            iface
                                .import_sigs
                                .push((name.clone(), types[t as usize].clone()));
                        }
                        TypeRef::Memory(m) => {
                            iface.memory_import = Some((name.clone(), m.shared, m.maximum));
                        }
                        _ => {}
                    }
                    iface.imports.push(name);
                }
            }
            Payload::FunctionSection(reader) => {
                for t in reader {
                    funcs.push(t.unwrap());
                }
            }
            Payload::MemorySection(reader) => iface.memories += reader.count() as usize,
            Payload::ExportSection(reader) => {
                for export in reader {
                    let e = export.unwrap();
                    raw_exports.push((e.name.to_string(), e.kind, e.index));
                }
            }
            _ => {}
        }
    }
    for (name, kind, index) in raw_exports {
        let sig =
            (kind == ExternalKind::Func).then(|| types[funcs[index as usize] as usize].clone());
        iface.exports.push((name, kind, sig));
    }
    iface
}

/// Asserts the wasi-threads ABI, as wasmtime's `wasi-threads` expects it.
fn assert_threaded(built: &Built) -> Interface {
    assert_eq!(built.code, 0, "{}", built.stderr);
    let iface = interface(&built.module);
    let (name, shared, maximum) = iface
        .memory_import
        .clone()
        .unwrap_or_else(|| panic!("no imported memory: {:?}", iface.imports));
    assert_eq!(name, "env.memory");
    assert!(shared, "the imported memory is not shared");
    // 1 GiB by default, in 64 KiB pages.
    assert_eq!(maximum, Some(16384));
    assert_eq!(iface.memories, 0, "a memory of its own besides the import");
    let spawn = iface
        .import_sigs
        .iter()
        .find(|(n, _)| n == "wasi.thread-spawn")
        .unwrap_or_else(|| panic!("no wasi.thread-spawn: {:?}", iface.imports));
    assert_eq!(spawn.1, (vec![ValType::I32], vec![ValType::I32]));
    let start = iface
        .exports
        .iter()
        .find(|(n, _, _)| n == "wasi_thread_start")
        .expect("no export wasi_thread_start");
    assert_eq!(start.1, ExternalKind::Func);
    assert_eq!(
        start.2,
        Some((vec![ValType::I32, ValType::I32], vec![])),
        "wasi_thread_start's type"
    );
    for (export, kind) in [
        ("memory", ExternalKind::Memory),
        ("_start", ExternalKind::Func),
    ] {
        assert!(
            iface
                .exports
                .iter()
                .any(|(n, k, _)| n == export && *k == kind),
            "no export {export}: {:?}",
            iface.exports.iter().map(|e| &e.0).collect::<Vec<_>>()
        );
    }
    iface
}

const CREATE_JOIN: &str = r#"
#include <pthread.h>
#include <stdio.h>
static void *square(void *arg) { long n = (long)arg; return (void *)(n * n); }
int main(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, square, (void *)i) != 0) return 1;
    long sum = 0;
    for (int i = 0; i < 4; i++) { void *r; pthread_join(t[i], &r); sum += (long)r; }
    printf("%ld\n", sum);
    return sum == 14 ? 0 : 2;
}
"#;

const MUTEX: &str = r#"
#include <pthread.h>
#include <stdio.h>
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static void *add(void *arg) {
    (void)arg;
    for (int i = 0; i < 100000; i++) { pthread_mutex_lock(&lock); counter++; pthread_mutex_unlock(&lock); }
    return NULL;
}
int main(void) {
    pthread_t a, b;
    pthread_create(&a, NULL, add, NULL);
    pthread_create(&b, NULL, add, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("%ld\n", counter);
    return counter == 200000 ? 0 : 1;
}
"#;

const CONDVAR: &str = r#"
#include <pthread.h>
#include <stdio.h>
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static int value;
static void *produce(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    value = 42;
    pthread_cond_signal(&ready);
    pthread_mutex_unlock(&lock);
    return NULL;
}
int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, produce, NULL);
    pthread_mutex_lock(&lock);
    while (value == 0) pthread_cond_wait(&ready, &lock);
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);
    printf("%d\n", value);
    return 0;
}
"#;

const THREAD_LOCAL: &str = r#"
#include <pthread.h>
#include <stdio.h>
static _Thread_local int mine = 7;
static __thread char name[32] = "main";
static void *work(void *arg) {
    mine += (int)(long)arg;
    snprintf(name, sizeof name, "worker %ld", (long)arg);
    return (void *)(long)mine;
}
int main(void) {
    pthread_t t;
    void *r;
    pthread_create(&t, NULL, work, (void *)5);
    pthread_join(t, &r);
    printf("%s %d %ld\n", name, mine, (long)r);
    return mine == 7 && (long)r == 12 ? 0 : 1;
}
"#;

const ONCE: &str = r#"
#include <pthread.h>
#include <stdio.h>
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int inits;
static void init(void) { inits++; }
static void *work(void *arg) { (void)arg; pthread_once(&once, init); return NULL; }
int main(void) {
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    pthread_once(&once, init);
    printf("%d\n", inits);
    return inits == 1 ? 0 : 1;
}
"#;

const FORKS: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
static void *child_of_thread(void *arg) {
    (void)arg;
    pid_t p = fork();
    if (p == 0) _exit(7);
    int st;
    waitpid(p, &st, 0);
    return (void *)(long)WEXITSTATUS(st);
}
int main(void) {
    pthread_t t;
    void *r;
    pthread_create(&t, NULL, child_of_thread, NULL);
    pthread_join(t, &r);
    printf("child %ld\n", (long)r);
    return 0;
}
"#;

#[test]
fn pthread_create_and_join() {
    let iface = assert_threaded(&cc("create_join", CREATE_JOIN, &[]));
    // Nothing forks: no asyncify, no warden import.
    assert!(
        !iface.imports.iter().any(|i| i.starts_with("warden.")),
        "{:?}",
        iface.imports
    );
    assert!(!iface.exports.iter().any(|e| e.0.starts_with("asyncify")));
}

#[test]
fn pthread_mutex() {
    assert_threaded(&cc("mutex", MUTEX, &[]));
}

#[test]
fn pthread_condition_variable() {
    assert_threaded(&cc("condvar", CONDVAR, &[]));
}

#[test]
fn thread_local_storage() {
    assert_threaded(&cc("thread_local", THREAD_LOCAL, &[]));
}

#[test]
fn pthread_once() {
    assert_threaded(&cc("once", ONCE, &[]));
}

/// A threaded program that forks goes through asyncify like any other, and
/// keeps the threads ABI.
#[test]
fn threaded_program_that_forks_is_asyncified() {
    let iface = assert_threaded(&cc("forks", FORKS, &[]));
    assert!(
        iface.imports.iter().any(|i| i == "warden.proc_fork"),
        "{:?}",
        iface.imports
    );
    for export in [
        "asyncify_start_unwind",
        "asyncify_stop_unwind",
        "asyncify_start_rewind",
        "asyncify_stop_rewind",
        "asyncify_get_state",
        "__warden_fork_buffer",
        "__stack_pointer",
    ] {
        assert!(
            iface.exports.iter().any(|e| e.0 == export),
            "no export {export}"
        );
    }
}

/// The memory maximum is the user's when given.
#[test]
fn memory_maximum_can_be_overridden() {
    let built = cc("max64", CREATE_JOIN, &["-Wl,--max-memory=67108864"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let (_, shared, maximum) = interface(&built.module).memory_import.unwrap();
    assert!(shared);
    assert_eq!(maximum, Some(1024));
}

/// `-c` then a link, both with `-pthread`.
#[test]
fn compiles_and_links_separately() {
    let obj = cc("separate", MUTEX, &["-c"]);
    assert_eq!(obj.code, 0, "{}", obj.stderr);
    let module = obj.module.with_extension("linked.wasm");
    let out = warden()
        .args(["cc", "-pthread"])
        .arg(&obj.module)
        .arg("-o")
        .arg(&module)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = Built {
        code: 0,
        stderr: String::new(),
        module,
        _dir: tempfile::tempdir().unwrap(),
    };
    assert_threaded(&built);
}

/// clang's diagnostics and exit code come through unchanged.
#[test]
fn compile_errors_are_clangs() {
    let built = cc(
        "broken",
        "#include <pthread.h>\nint main(void) { pthread_t t; return nope }\n",
        &[],
    );
    assert_eq!(built.code, 1, "{}", built.stderr);
    assert!(built.stderr.contains("nope"), "{}", built.stderr);
    assert!(built.stderr.contains("error:"), "{}", built.stderr);
    assert!(!built.module.exists());
}

/// Without -pthread nothing is shared: the plain build is untouched.
#[test]
fn without_pthread_the_memory_is_not_shared() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("plain.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let module = dir.path().join("plain.wasm");
    let out = warden()
        .args(["cc", "-O2"])
        .arg(&src)
        .arg("-o")
        .arg(&module)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let iface = interface(&module);
    assert!(iface.memory_import.is_none());
    assert_eq!(iface.memories, 1);
    assert!(!iface.imports.iter().any(|i| i == "wasi.thread-spawn"));
}

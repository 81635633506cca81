//! The host side called directly, for what a guest cannot easily reach:
//! the table emptying as resources drop, a stream's error code, FIFOs.

use crate::fs::{VfsCtx, VfsHost, VfsView};
use bytes::Bytes;
use std::sync::Arc;
use warden_kernel::vfs::host::HostDir;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::filesystem::preopens::Host as _;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, DescriptorFlags as D, ErrorCode, Host as _, HostDescriptor, HostDirectoryEntryStream,
    OpenFlags as O, PathFlags,
};
use wasmtime_wasi::p2::StreamError;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    vfs: VfsCtx,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl VfsView for State {
    fn vfs(&mut self) -> &mut VfsCtx {
        &mut self.vfs
    }
}

fn state(dir: &std::path::Path) -> State {
    let root = HostDir::open_root(dir, false).unwrap();
    State {
        wasi: WasiCtx::builder().build(),
        table: ResourceTable::new(),
        vfs: VfsCtx::new(vec![("/d".into(), Arc::new(root))]),
    }
}

fn borrow(fd: &Resource<types::Descriptor>) -> Resource<types::Descriptor> {
    Resource::new_borrow(fd.rep())
}

fn code<T>(r: wasmtime_wasi::p2::FsResult<T>) -> ErrorCode {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.downcast().expect("an error-code, not a trap"),
    }
}

#[tokio::test]
async fn resources_leave_the_table_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = state(dir.path());
    let mut h = VfsHost(&mut st);
    let (root, name) = h.get_directories().unwrap().remove(0);
    assert_eq!(name, "/d");
    let f = h
        .open_at(
            borrow(&root),
            PathFlags::empty(),
            "a".into(),
            O::CREATE,
            D::WRITE,
        )
        .await
        .unwrap();
    assert_eq!(h.write(borrow(&f), b"abc".to_vec(), 0).await.unwrap(), 3);
    let list = h.read_directory(borrow(&root)).await.unwrap();
    let entry = h
        .read_directory_entry(Resource::new_borrow(list.rep()))
        .await;
    assert_eq!(entry.unwrap().unwrap().name, "a");
    let end = h
        .read_directory_entry(Resource::new_borrow(list.rep()))
        .await;
    assert!(end.unwrap().is_none());
    assert_eq!(h.ctx().open_count(), 3);
    HostDirectoryEntryStream::drop(&mut h, list).unwrap();
    HostDescriptor::drop(&mut h, f).unwrap();
    assert_eq!(h.ctx().open_count(), 1);
    HostDescriptor::drop(&mut h, root).unwrap();
    assert_eq!(h.ctx().open_count(), 0);
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"abc");
}

#[tokio::test]
async fn a_failed_stream_write_has_a_filesystem_error_code() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let dev = HostDir::open_root(std::path::Path::new("/dev"), false).unwrap();
    let mut st = State {
        wasi: WasiCtx::builder().build(),
        table: ResourceTable::new(),
        vfs: VfsCtx::new(vec![("/dev".into(), Arc::new(dev))]),
    };
    let mut h = VfsHost(&mut st);
    let (root, _) = h.get_directories().unwrap().remove(0);
    let full = h
        .open_at(
            borrow(&root),
            PathFlags::empty(),
            "full".into(),
            O::empty(),
            D::WRITE,
        )
        .await
        .unwrap();
    let out = h.write_via_stream(borrow(&full), 0).unwrap();
    let err = match h
        .table()
        .get_mut(&out)
        .unwrap()
        .write(Bytes::from_static(b"x"))
    {
        Err(StreamError::LastOperationFailed(e)) => e,
        other => panic!("expected a failed write, got {other:?}"),
    };
    let err = h.table().push(err).unwrap();
    let got = h.filesystem_error_code(Resource::new_borrow(err.rep()));
    assert_eq!(got.unwrap(), Some(ErrorCode::InsufficientSpace));
    // The stream is closed after its failure.
    let again = h.table().get_mut(&out).unwrap().check_write();
    assert!(matches!(again, Err(StreamError::Closed)), "{again:?}");
}

#[tokio::test]
async fn rights_are_checked_before_the_node_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "data").unwrap();
    let mut st = state(dir.path());
    let mut h = VfsHost(&mut st);
    let (root, _) = h.get_directories().unwrap().remove(0);
    let r = h
        .open_at(
            borrow(&root),
            PathFlags::empty(),
            "f".into(),
            O::empty(),
            D::READ,
        )
        .await
        .unwrap();
    assert_eq!(
        code(h.write(borrow(&r), b"x".to_vec(), 0).await),
        ErrorCode::BadDescriptor
    );
    assert_eq!(
        code(h.write_via_stream(borrow(&r), 0)),
        ErrorCode::BadDescriptor
    );
    assert_eq!(code(h.set_size(borrow(&r), 0).await), ErrorCode::Invalid);
    let bad = h
        .open_at(
            borrow(&root),
            PathFlags::empty(),
            "/etc/passwd".into(),
            O::empty(),
            D::READ,
        )
        .await;
    assert_eq!(code(bad), ErrorCode::NotPermitted);
    let nul = h.create_directory_at(borrow(&root), "a\0b".into()).await;
    assert_eq!(code(nul), ErrorCode::IllegalByteSequence);
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"data");
}

fn mkfifo(path: &std::path::Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "mkfifo {}", path.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn fifos_wait_for_their_other_end() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("out"));
    mkfifo(&dir.path().join("in"));
    let mut st = state(dir.path());
    let mut h = VfsHost(&mut st);
    let (root, _) = h.get_directories().unwrap().remove(0);

    // Opening for writing waits for a reader, without holding the thread.
    let out_path = dir.path().join("out");
    let reader = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::fs::read_to_string(out_path).unwrap()
    });
    let w = h
        .open_at(
            borrow(&root),
            PathFlags::empty(),
            "out".into(),
            O::empty(),
            D::WRITE,
        )
        .await
        .unwrap();
    assert_eq!(
        h.get_type(borrow(&w)).await.unwrap(),
        types::DescriptorType::Fifo
    );
    let s = h.write_via_stream(borrow(&w), 0).unwrap();
    let mut stream = h.table().delete(s).unwrap();
    stream
        .blocking_write_and_flush(Bytes::from_static(b"through the fifo"))
        .await
        .unwrap();
    drop(stream);
    HostDescriptor::drop(&mut h, w).unwrap();
    assert_eq!(reader.join().unwrap(), "through the fifo");

    // Read before the writer came: nothing yet, not the end.
    let r = h
        .open_at(
            borrow(&root),
            PathFlags::empty(),
            "in".into(),
            O::empty(),
            D::READ,
        )
        .await
        .unwrap();
    let s = h.read_via_stream(borrow(&r), 0).unwrap();
    let mut stream = h.table().delete(s).unwrap();
    assert!(stream.read(10).unwrap().is_empty());
    let in_path = dir.path().join("in");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::fs::write(in_path, "ping").unwrap();
    });
    let mut got = Vec::new();
    loop {
        match stream.blocking_read(10).await {
            Ok(data) => got.extend_from_slice(&data),
            Err(StreamError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    writer.join().unwrap();
    assert_eq!(got, b"ping");
}

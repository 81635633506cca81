//! `wasi:keyvalue@0.2.0-draft2` (`wit/draft2`), as Spin uses it: the
//! `list-keys` cursor is the seal's own, `increment` is the seal's `s64`
//! counter, and `atomics` has compare-and-swap handles.

use wasmtime::component::{Linker, Resource};

use crate::{Bucket, Cas, HasKeyValue, KeyValueCtxView, KeyValueView};

/// The generated bindings.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/draft2",
        world: "wasi:keyvalue/imports@0.2.0-draft2",
        imports: { default: trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::Bucket,
            "wasi:keyvalue/atomics.cas": crate::Cas,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

type Result<T, E = store::Error> = wasmtime::Result<std::result::Result<T, E>>;

/// Adds `store`, `atomics` and `batch` of this version to `linker`.
pub fn add_to_linker<T: KeyValueView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    store::add_to_linker::<T, HasKeyValue>(linker, crate::view)?;
    atomics::add_to_linker::<T, HasKeyValue>(linker, crate::view)?;
    batch::add_to_linker::<T, HasKeyValue>(linker, crate::view)?;
    Ok(())
}

fn wit(e: crate::Error) -> store::Error {
    match e {
        crate::Error::AccessDenied(_) => store::Error::AccessDenied,
        e => store::Error::Other(e.to_string()),
    }
}

impl KeyValueCtxView<'_> {
    /// Counts the call and runs `f` on the bucket; a bad handle traps.
    fn draft2<R>(
        &mut self,
        bucket: &Resource<Bucket>,
        f: impl FnOnce(&mut Bucket) -> std::result::Result<R, crate::Error>,
    ) -> Result<R> {
        self.ctx.count();
        let bucket = self.table.get_mut(bucket)?;
        Ok(self.ctx.blocking(|| f(bucket)).map_err(wit))
    }
}

impl store::Host for KeyValueCtxView<'_> {
    fn open(&mut self, identifier: String) -> Result<Resource<Bucket>> {
        self.ctx.count();
        let ctx = &*self.ctx;
        match ctx.blocking(|| ctx.open(&identifier)) {
            Ok(bucket) => Ok(Ok(self.table.push(bucket)?)),
            Err(e) => Ok(Err(wit(e))),
        }
    }
}

impl store::HostBucket for KeyValueCtxView<'_> {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>> {
        self.draft2(&bucket, |b| b.get(&key))
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<()> {
        self.draft2(&bucket, |b| b.set(&key, &value))
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<()> {
        self.draft2(&bucket, |b| b.delete(&key))
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool> {
        self.draft2(&bucket, |b| b.exists(&key))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse> {
        self.draft2(&bucket, |b| {
            let page = b.list_keys(cursor.as_deref())?;
            Ok(store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
        })
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueCtxView<'_> {
    fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: i64) -> Result<i64> {
        self.draft2(&bucket, |b| b.increment(&key, delta))
    }

    fn swap(&mut self, cas: Resource<Cas>, value: Vec<u8>) -> Result<(), atomics::CasError> {
        self.ctx.count();
        let cas = self.table.delete(cas)?;
        Ok(match self.ctx.blocking(|| cas.swap(&value)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(now)) => Err(atomics::CasError::CasFailed(self.table.push(now)?)),
            Err(e) => Err(atomics::CasError::StoreError(wit(e))),
        })
    }
}

impl atomics::HostCas for KeyValueCtxView<'_> {
    fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Result<Resource<Cas>> {
        self.ctx.count();
        let bucket = self.table.get(&bucket)?;
        match self.ctx.blocking(|| bucket.cas(key)) {
            Ok(cas) => Ok(Ok(self.table.push(cas)?)),
            Err(e) => Ok(Err(wit(e))),
        }
    }

    fn current(&mut self, cas: Resource<Cas>) -> Result<Option<Vec<u8>>> {
        self.ctx.count();
        Ok(Ok(self.table.get(&cas)?.current().map(<[u8]>::to_vec)))
    }

    fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KeyValueCtxView<'_> {
    fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        self.draft2(&bucket, |b| {
            let values = b.get_many(&keys)?;
            Ok(keys.into_iter().zip(values).collect())
        })
    }

    fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<()> {
        self.draft2(&bucket, |b| b.set_many(&key_values))
    }

    fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Result<()> {
        self.draft2(&bucket, |b| b.delete_many(&keys))
    }
}

//! `wasi:keyvalue@0.2.0-draft` (`wit/draft`), as wasmtime and wasmCloud use
//! it. The `list-keys` cursor is an offset (see
//! [`Bucket::list_keys_at`](crate::Bucket::list_keys_at)); counters are
//! unsigned and kept within `0..=i64::MAX`
//! ([`Bucket::increment_unsigned`](crate::Bucket::increment_unsigned)).

use wasmtime::component::{Linker, Resource};

use crate::{Bucket, HasKeyValue, KeyValueCtxView, KeyValueView};

/// The generated bindings.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/draft",
        world: "wasi:keyvalue/imports@0.2.0-draft",
        imports: { default: trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::Bucket,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

type Result<T> = wasmtime::Result<std::result::Result<T, store::Error>>;

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
    fn draft<R>(
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
        self.draft(&bucket, |b| b.get(&key))
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<()> {
        self.draft(&bucket, |b| b.set(&key, &value))
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<()> {
        self.draft(&bucket, |b| b.delete(&key))
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool> {
        self.draft(&bucket, |b| b.exists(&key))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<store::KeyResponse> {
        self.draft(&bucket, |b| {
            let page = b.list_keys_at(cursor)?;
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
    fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: u64) -> Result<u64> {
        self.draft(&bucket, |b| b.increment_unsigned(&key, delta))
    }
}

impl batch::Host for KeyValueCtxView<'_> {
    fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>> {
        self.draft(&bucket, |b| {
            let values = b.get_many(&keys)?;
            Ok(keys
                .into_iter()
                .zip(values)
                .map(|(k, v)| v.map(|v| (k, v)))
                .collect())
        })
    }

    fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<()> {
        self.draft(&bucket, |b| b.set_many(&key_values))
    }

    fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Result<()> {
        self.draft(&bucket, |b| b.delete_many(&keys))
    }
}

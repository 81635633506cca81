//! What both WIT versions do, over one sealed [`Namespace`]: the bindings in
//! `draft.rs` and `draft2.rs` only convert types and errors.

use warden_seal::Namespace;

use crate::Error;

/// An open bucket: the namespace `"{app}/{label}"` of the store.
pub struct Bucket {
    ns: Namespace,
    page_size: usize,
    /// The draft's numeric cursors: the offset that the last page of this
    /// bucket ended at, and the seal's cursor there, so that listing page
    /// after page does not walk from the start each time.
    last_page: Option<(u64, String)>,
}

/// A draft2 `cas` handle: a key and the value it had when the handle was
/// made (`None`: absent).
pub struct Cas {
    ns: Namespace,
    key: String,
    current: Option<Vec<u8>>,
}

/// One page of [`Bucket::list_keys`] / [`Bucket::list_keys_at`].
pub struct Keys<C> {
    pub keys: Vec<String>,
    /// Where the next page starts; `None` after the last one.
    pub cursor: Option<C>,
}

impl Bucket {
    pub(crate) fn new(ns: Namespace, page_size: usize) -> Self {
        Bucket {
            ns,
            page_size: page_size.max(1),
            last_page: None,
        }
    }

    /// The sealed namespace behind this bucket.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.ns.get(key)?)
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        Ok(self.ns.set(key, value)?)
    }

    /// Deleting a missing key is not an error (both drafts: "if the key
    /// does not exist, it does nothing").
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.ns.delete(key)?;
        Ok(())
    }

    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.ns.exists(key)?)
    }

    /// draft2: one page after the seal's own `cursor` (returned as it is).
    pub fn list_keys(&self, cursor: Option<&str>) -> Result<Keys<String>, Error> {
        let page = self.ns.list("", cursor, self.page_size)?;
        Ok(Keys {
            keys: names(page.keys)?,
            cursor: page.next,
        })
    }

    /// draft: the numeric cursor is an offset, the number of keys listed
    /// before the page (the seal lists in the order of the keys' hashes,
    /// which does not change while the keys do not). The page after the one
    /// this bucket returned last starts from the seal's cursor; any other
    /// offset walks that many keys from the start. Keys set or deleted
    /// between two pages may be missed or listed twice, as with any offset.
    pub fn list_keys_at(&mut self, offset: Option<u64>) -> Result<Keys<u64>, Error> {
        let offset = offset.unwrap_or(0);
        let cursor = match &self.last_page {
            _ if offset == 0 => None,
            Some((at, cursor)) if *at == offset => Some(cursor.clone()),
            _ => match self.skip(offset)? {
                Some(cursor) => Some(cursor),
                // Fewer keys than the offset: nothing left.
                None => {
                    return Ok(Keys {
                        keys: Vec::new(),
                        cursor: None,
                    })
                }
            },
        };
        let page = self.ns.list("", cursor.as_deref(), self.page_size)?;
        let keys = names(page.keys)?;
        let next = match page.next {
            Some(c) => {
                let at = offset
                    .checked_add(keys.len() as u64)
                    .ok_or_else(|| Error::Other("list-keys: cursor out of range".into()))?;
                self.last_page = Some((at, c));
                Some(at)
            }
            None => None,
        };
        Ok(Keys { keys, cursor: next })
    }

    /// The seal's cursor after the first `n` keys (`n` > 0), or `None` if
    /// there are no more than `n`.
    fn skip(&self, n: u64) -> Result<Option<String>, Error> {
        let mut left = n;
        let mut cursor: Option<String> = None;
        while left > 0 {
            let step = usize::try_from(left).unwrap_or(usize::MAX).min(1000);
            let page = self.ns.list("", cursor.as_deref(), step)?;
            left -= page.keys.len() as u64;
            match page.next {
                Some(c) => cursor = Some(c),
                None => return Ok(None),
            }
        }
        Ok(cursor)
    }

    /// draft2: the seal's increment (decimal text, `i64`, 0 when absent).
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        Ok(self.ns.increment(key, delta)?)
    }

    /// draft: an unsigned counter. The value is the same decimal text the
    /// seal's increment keeps, so it stays within `0..=i64::MAX`; a delta
    /// or result outside that range is refused and changes nothing.
    pub fn increment_unsigned(&self, key: &str, delta: u64) -> Result<u64, Error> {
        let Ok(delta) = i64::try_from(delta) else {
            return Err(Error::Other(format!(
                "increment of {key:?}: delta {delta} is larger than {}",
                i64::MAX
            )));
        };
        let new = self.ns.transaction(|tx| {
            let current = match tx.get(key)? {
                None => 0,
                Some(v) => parse_counter(&v).ok_or_else(|| {
                    Error::Other(format!("increment of {key:?}: the value is not an integer"))
                })?,
            };
            let new = current.checked_add(delta).ok_or_else(|| {
                Error::Other(format!(
                    "increment of {key:?}: {current} + {delta} overflows a 64-bit counter"
                ))
            })?;
            let new = u64::try_from(new).map_err(|_| {
                Error::Other(format!(
                    "increment of {key:?}: the result {new} is negative"
                ))
            })?;
            tx.set(key, new.to_string())?;
            Ok::<_, Error>(new)
        })?;
        Ok(new)
    }

    /// The values of `keys`, in order, from one snapshot.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        Ok(self.ns.get_many(keys)?)
    }

    /// One atomic transaction.
    pub fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), Error> {
        Ok(self.ns.set_many(entries)?)
    }

    /// One atomic transaction; missing keys are not an error.
    pub fn delete_many(&self, keys: &[String]) -> Result<(), Error> {
        self.ns.delete_many(keys)?;
        Ok(())
    }

    /// draft2 `cas.new`: remembers the value `key` has now.
    pub fn cas(&self, key: String) -> Result<Cas, Error> {
        Cas::read(self.ns.clone(), key)
    }
}

impl Cas {
    fn read(ns: Namespace, key: String) -> Result<Cas, Error> {
        let current = ns.get(&key)?;
        Ok(Cas { ns, key, current })
    }

    /// The value remembered when the handle was made.
    pub fn current(&self) -> Option<&[u8]> {
        self.current.as_deref()
    }

    /// Sets `value` if the key still has the remembered value; otherwise
    /// changes nothing and returns a new handle on the value it has now.
    pub fn swap(self, value: &[u8]) -> Result<Result<(), Cas>, Error> {
        if self
            .ns
            .compare_and_swap(&self.key, self.current.as_deref(), Some(value))?
        {
            Ok(Ok(()))
        } else {
            Ok(Err(Cas::read(self.ns, self.key)?))
        }
    }
}

/// The seal's counter format: decimal text, surrounding blanks allowed.
fn parse_counter(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// Keys are set from WIT strings, so they are UTF-8; a name that is not
/// (written through another interface) is reported rather than mangled.
fn names(keys: Vec<Vec<u8>>) -> Result<Vec<String>, Error> {
    keys.into_iter()
        .map(|k| {
            String::from_utf8(k).map_err(|e| {
                Error::Other(format!(
                    "list-keys: a key is not UTF-8: {:?}",
                    String::from_utf8_lossy(e.as_bytes())
                ))
            })
        })
        .collect()
}

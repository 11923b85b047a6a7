//! How an event's body is kept on disk: its JSON line compressed as one zstd frame, with a
//! dictionary trained on the store's own recent events (log lines of one team repeat their keys,
//! services and phrasing, so a 500-byte line shrinks to ~130 bytes, where plain zstd on one line
//! gets little). Dictionaries live in the `dictionaries` table under the id zstd writes into each
//! frame, so every body names the dictionary it needs and old bodies stay readable after a new
//! dictionary is trained.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::{Context as _, anyhow};
use rusqlite::{Connection, OptionalExtension};
use zstd::dict::EncoderDictionary;

use crate::event::StoredEvent;

/// zstd level 1: with the dictionary, frames within 2 % of level 3's size on the generator's
/// events (and level 3's within a few percent of level 9's), and compressing them is a tenth of
/// ingest's CPU at level 3.
const LEVEL: i32 = 1;
/// Large enough for the shared vocabulary of a team's events; small enough to load per read.
const DICTIONARY_BYTES: usize = 64 * 1024;
/// A body never inflates past this (events are cut to far less at ingest): a corrupt frame
/// cannot make a read allocate more.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The newest dictionary, shared by the tasks that compress bodies (ingest compresses in the
/// callers' tasks, in parallel, not in the single writer thread) and replaced by the writer
/// when it trains a new one.
#[derive(Default)]
pub(super) struct NewestDictionary {
    dictionary: RwLock<Option<Arc<EncoderDictionary<'static>>>>,
}

impl NewestDictionary {
    /// Loads the newest dictionary in the store, if any.
    pub(super) fn load(&self, conn: &Connection) -> anyhow::Result<()> {
        let newest: Option<Vec<u8>> = conn
            .query_row("SELECT bytes FROM dictionaries ORDER BY rowid DESC LIMIT 1", [], |row| row.get(0))
            .optional()?;
        *self.dictionary.write().unwrap_or_else(PoisonError::into_inner) =
            newest.map(|bytes| Arc::new(EncoderDictionary::copy(&bytes, LEVEL)));
        Ok(())
    }

    pub(super) fn get(&self) -> Option<Arc<EncoderDictionary<'static>>> {
        self.dictionary.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

self_cell::self_cell!(
    /// A compressor with the dictionary it borrows.
    struct DictionaryCompressor {
        owner: Option<Arc<EncoderDictionary<'static>>>,
        #[covariant]
        dependent: Compressor,
    }
);

type Compressor<'d> = zstd::bulk::Compressor<'d>;

impl DictionaryCompressor {
    fn with(dictionary: Option<Arc<EncoderDictionary<'static>>>) -> anyhow::Result<DictionaryCompressor> {
        DictionaryCompressor::try_new(dictionary, |dictionary| {
            Ok(match dictionary {
                Some(dictionary) => Compressor::with_prepared_dictionary(dictionary)?,
                None => Compressor::new(LEVEL)?,
            })
        })
    }

    fn uses(&self, dictionary: Option<&Arc<EncoderDictionary<'static>>>) -> bool {
        match (self.borrow_owner(), dictionary) {
            (Some(mine), Some(wanted)) => Arc::ptr_eq(mine, wanted),
            (None, None) => true,
            _ => false,
        }
    }
}

thread_local! {
    /// Each thread's compressor, kept from batch to batch until the dictionary changes: a zstd
    /// context costs more to make (its workspace) than a batch of events costs to compress.
    static COMPRESSOR: RefCell<Option<DictionaryCompressor>> = const { RefCell::new(None) };
}

/// Compresses bodies with one dictionary (or none before the first is trained), with the
/// calling thread's compressor.
pub(super) struct BodyEncoder {
    dictionary: Option<Arc<EncoderDictionary<'static>>>,
    /// The JSON line of the event being encoded: one buffer for all of them.
    json: Vec<u8>,
}

impl BodyEncoder {
    pub(super) fn new(dictionary: Option<Arc<EncoderDictionary<'static>>>) -> BodyEncoder {
        BodyEncoder { dictionary, json: Vec::with_capacity(1024) }
    }

    /// The body of `event`: its JSON line ([`StoredEvent::to_json`]) compressed.
    pub(super) fn encode_event(&mut self, event: &StoredEvent) -> anyhow::Result<Vec<u8>> {
        self.json.clear();
        if serde_json::to_writer(&mut self.json, event).is_err() {
            self.json.clear();
            self.json.extend_from_slice(event.to_json().as_bytes());
        }
        self.compress(&self.json)
    }

    fn compress(&self, json: &[u8]) -> anyhow::Result<Vec<u8>> {
        COMPRESSOR.with_borrow_mut(|kept| {
            let compressor = match kept {
                Some(compressor) if compressor.uses(self.dictionary.as_ref()) => compressor,
                _ => kept.insert(DictionaryCompressor::with(self.dictionary.clone())?),
            };
            compressor.with_dependent_mut(|_, compressor| compressor.compress(json)).context("compressing an event")
        })
    }

    #[cfg(test)]
    pub(super) fn encode(&mut self, json: &str) -> anyhow::Result<Vec<u8>> {
        self.compress(json.as_bytes())
    }
}

/// Trains a dictionary on `samples` (event JSON lines), stores it, and returns its id.
pub(super) fn train_dictionary(conn: &Connection, samples: &[String]) -> anyhow::Result<u32> {
    let dictionary = zstd::dict::from_samples(samples, DICTIONARY_BYTES).context("training a dictionary")?;
    let id = zstd::zstd_safe::get_dict_id_from_dict(&dictionary).ok_or_else(|| anyhow!("a dictionary without id"))?;
    conn.execute(
        "INSERT OR REPLACE INTO dictionaries (id, bytes) VALUES (?1, ?2)",
        rusqlite::params![id.get(), dictionary],
    )?;
    Ok(id.get())
}

/// Decompresses bodies; loads each dictionary once from the connection it is given.
#[derive(Default)]
pub(super) struct BodyDecoder {
    by_dictionary: HashMap<u32, zstd::bulk::Decompressor<'static>>,
}

impl BodyDecoder {
    /// The JSON line of a stored body.
    pub(super) fn json(&mut self, conn: &Connection, body: &[u8]) -> anyhow::Result<String> {
        let dictionary = zstd::zstd_safe::get_dict_id_from_frame(body).map_or(0, |id| id.get());
        let decompressor = match self.by_dictionary.entry(dictionary) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let decompressor = if dictionary == 0 {
                    zstd::bulk::Decompressor::new()?
                } else {
                    let bytes: Vec<u8> = conn
                        .query_row("SELECT bytes FROM dictionaries WHERE id = ?1", [dictionary], |row| row.get(0))
                        .with_context(|| format!("loading dictionary {dictionary}"))?;
                    zstd::bulk::Decompressor::with_dictionary(&bytes)?
                };
                slot.insert(decompressor)
            }
        };
        let size = match zstd::zstd_safe::get_frame_content_size(body) {
            Ok(Some(size)) => usize::try_from(size).unwrap_or(usize::MAX),
            _ => MAX_BODY_BYTES,
        };
        if size > MAX_BODY_BYTES {
            return Err(anyhow!("a stored body claims {size} bytes"));
        }
        let bytes = decompressor.decompress(body, size).context("decompressing an event")?;
        String::from_utf8(bytes).context("a stored body is not UTF-8")
    }

    pub(super) fn event(&mut self, conn: &Connection, body: &[u8]) -> anyhow::Result<StoredEvent> {
        let json = self.json(conn, body)?;
        serde_json::from_str(&json).context("a stored body is not an event")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch("CREATE TABLE dictionaries (id INTEGER PRIMARY KEY, bytes BLOB NOT NULL)").expect("schema");
        conn
    }

    fn line(i: usize) -> String {
        format!(
            r#"{{"id":"01JD{i:022}","project":"shop","env":"production","level":"info","message":"GET /api/orders/{i} answered 200 in {} ms","extra":{{"service":"orders","region":"ap-northeast-2"}}}}"#,
            i % 97
        )
    }

    #[test]
    fn bodies_read_back_whichever_dictionary_wrote_them_and_a_dictionary_makes_them_smaller() {
        let conn = db();
        let newest = NewestDictionary::default();
        newest.load(&conn).expect("load");
        let before = BodyEncoder::new(newest.get()).encode(&line(1)).expect("encode");
        let samples: Vec<String> = (0..2_000).map(line).collect();
        train_dictionary(&conn, &samples).expect("train");
        newest.load(&conn).expect("load");
        let after = BodyEncoder::new(newest.get()).encode(&line(1)).expect("encode");
        assert!(after.len() * 2 < before.len(), "{} bytes with the dictionary, {} without", after.len(), before.len());

        let mut decoder = BodyDecoder::default();
        assert_eq!(decoder.json(&conn, &before).expect("plain"), line(1));
        assert_eq!(decoder.json(&conn, &after).expect("trained"), line(1));
    }

    #[test]
    fn a_corrupt_or_truncated_body_or_a_missing_dictionary_is_an_error_not_a_panic() {
        let conn = db();
        let whole = BodyEncoder::new(None).encode(&line(1)).expect("encode");
        let samples: Vec<String> = (0..2_000).map(line).collect();
        train_dictionary(&conn, &samples).expect("train");
        let newest = NewestDictionary::default();
        newest.load(&conn).expect("load");
        let with_dictionary = BodyEncoder::new(newest.get()).encode(&line(2)).expect("encode");
        conn.execute("DELETE FROM dictionaries", []).expect("delete");
        let mut decoder = BodyDecoder::default();
        for body in [&b"not zstd"[..], &whole[..whole.len() / 2], &with_dictionary] {
            assert!(decoder.json(&conn, body).is_err(), "{body:?}");
        }
    }
}

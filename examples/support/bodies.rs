//! What the store-reading examples share: a stored body back to its JSON line, and the process's
//! CPU time (on a shared box the wall time of a step says more about the neighbours).

use std::collections::HashMap;

use rusqlite::Connection;

/// Decompresses bodies with the store's dictionaries, loaded once.
pub struct Bodies {
    dictionaries: HashMap<u32, Vec<u8>>,
    decompressors: HashMap<u32, zstd::bulk::Decompressor<'static>>,
}

impl Bodies {
    pub fn of(conn: &Connection) -> anyhow::Result<Bodies> {
        let dictionaries = conn
            .prepare("SELECT id, bytes FROM dictionaries")?
            .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Bodies { dictionaries, decompressors: HashMap::new() })
    }

    /// The JSON line of a stored body.
    pub fn json(&mut self, body: &[u8]) -> anyhow::Result<Vec<u8>> {
        let id = zstd::zstd_safe::get_dict_id_from_frame(body).map_or(0, |id| id.get());
        let decompressor = match self.decompressors.entry(id) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(match self.dictionaries.get(&id) {
                Some(bytes) => zstd::bulk::Decompressor::with_dictionary(bytes)?,
                None => zstd::bulk::Decompressor::new()?,
            }),
        };
        let size = zstd::zstd_safe::get_frame_content_size(body).ok().flatten().unwrap_or(1 << 20);
        Ok(decompressor.decompress(body, usize::try_from(size)?)?)
    }
}

/// This process's CPU time (user + system), from /proc.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) start at its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime, fields 14 and 15 of the line (11 and 12 counted from the state); 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}

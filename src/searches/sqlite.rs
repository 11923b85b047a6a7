//! Saved searches in `data_dir/searches.db` (`[state] backend = "local"`): one row each, names
//! unique per project by the table's key, the count per project checked in the transaction that
//! inserts.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{OptionalExtension as _, TransactionBehavior};

use super::{MAX_PER_PROJECT, NotSaved, SavedSearch, SavedSearches};
use crate::sqlite::SharedConnection;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS searches (
    id         TEXT PRIMARY KEY,
    project    TEXT NOT NULL,
    name       TEXT NOT NULL,
    env        TEXT NOT NULL,
    q          TEXT NOT NULL,
    from_time  TEXT,
    to_time    TEXT,
    created_ms INTEGER NOT NULL,
    UNIQUE (project, name)
);
";

const COLUMNS: &str = "id, project, name, env, q, from_time, to_time, created_ms";

pub struct SqliteSearches {
    conn: SharedConnection,
}

impl SqliteSearches {
    pub fn open(data_dir: &Path) -> anyhow::Result<SqliteSearches> {
        Ok(SqliteSearches { conn: SharedConnection::open(&data_dir.join("searches.db"), 1_024, SCHEMA)? })
    }
}

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SavedSearch> {
    Ok(SavedSearch {
        id: row.get(0)?,
        project: row.get(1)?,
        name: row.get(2)?,
        env: row.get(3)?,
        q: row.get(4)?,
        from: row.get(5)?,
        to: row.get(6)?,
        created_ms: row.get(7)?,
    })
}

#[async_trait]
impl SavedSearches for SqliteSearches {
    async fn create(&self, search: SavedSearch) -> anyhow::Result<Result<SavedSearch, NotSaved>> {
        self.conn
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let taken: Option<String> = tx
                    .query_row(
                        "SELECT id FROM searches WHERE project = ?1 AND name = ?2",
                        [&search.project, &search.name],
                        |r| r.get(0),
                    )
                    .optional()?;
                if taken.is_some() {
                    return Ok(Err(NotSaved::NameTaken { project: search.project, name: search.name }));
                }
                let count: i64 =
                    tx.query_row("SELECT count(*) FROM searches WHERE project = ?1", [&search.project], |r| r.get(0))?;
                if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_PER_PROJECT {
                    return Ok(Err(NotSaved::Full { project: search.project }));
                }
                tx.execute(
                    &format!("INSERT INTO searches ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                    rusqlite::params![
                        search.id,
                        search.project,
                        search.name,
                        search.env,
                        search.q,
                        search.from,
                        search.to,
                        search.created_ms
                    ],
                )?;
                tx.commit()?;
                Ok(Ok(search))
            })
            .await
    }

    async fn list(&self, project: Option<&str>) -> anyhow::Result<Vec<SavedSearch>> {
        let project = project.map(str::to_string);
        self.conn
            .run(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM searches WHERE ?1 IS NULL OR project = ?1 ORDER BY project, created_ms, id"
                ))?;
                let rows = statement.query_map([project], row)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn delete(&self, id: &str) -> anyhow::Result<bool> {
        let id = id.to_string();
        self.conn.run(move |conn| Ok(conn.execute("DELETE FROM searches WHERE id = ?1", [id])? > 0)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(project: &str, name: &str) -> SavedSearch {
        SavedSearch {
            id: crate::event::new_id(time::OffsetDateTime::now_utc()).to_string(),
            name: name.into(),
            project: project.into(),
            env: "production".into(),
            q: "level:error".into(),
            from: Some("now-24h".into()),
            to: None,
            created_ms: 1,
        }
    }

    #[tokio::test]
    async fn names_are_unique_per_project_and_a_project_holds_at_most_its_limit() {
        let dir = tempfile::tempdir().expect("dir");
        let searches = SqliteSearches::open(dir.path()).expect("open");
        let first = searches.create(search("demo", "errors")).await.expect("create").expect("saved");
        assert_eq!(
            searches.create(search("demo", "errors")).await.expect("create"),
            Err(NotSaved::NameTaken { project: "demo".into(), name: "errors".into() })
        );
        assert!(searches.create(search("other", "errors")).await.expect("create").is_ok(), "another project's name");
        for i in 1..MAX_PER_PROJECT {
            searches.create(search("demo", &format!("s{i}"))).await.expect("create").expect("under the limit");
        }
        assert_eq!(
            searches.create(search("demo", "one too many")).await.expect("create"),
            Err(NotSaved::Full { project: "demo".into() })
        );
        assert_eq!(searches.list(Some("demo")).await.expect("list").len(), MAX_PER_PROJECT);
        assert_eq!(searches.list(None).await.expect("list").len(), MAX_PER_PROJECT + 1);
        assert!(searches.delete(&first.id).await.expect("delete"));
        assert!(!searches.delete(&first.id).await.expect("delete"), "gone");
        drop(searches);
        let reopened = SqliteSearches::open(dir.path()).expect("reopen");
        assert_eq!(reopened.list(Some("demo")).await.expect("list").len(), MAX_PER_PROJECT - 1, "kept on disk");
    }
}

//! Gives the rows of a store written before columns existed their columns: a thread of its own
//! asks the writer thread for one block at a time, newest first (the ranges people read most),
//! pausing between blocks so that ingest is never held up for more than one. Until a block has
//! its columns, reads take its rows from their bodies, as before.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::write::{Request, Writer};
use crate::sqlite::CommitFailed;

/// Between two blocks: a block is ~10–30 ms of the writer's time, so ingest keeps most of it.
const PAUSE: Duration = Duration::from_millis(20);

pub(super) struct Backfill {
    _stop: std_mpsc::Sender<()>,
}

impl Backfill {
    pub(super) fn spawn(writer: mpsc::WeakSender<Request>) -> anyhow::Result<Backfill> {
        let (stop, stopped) = std_mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("local-store-backfill".into())
            .spawn(move || {
                let mut blocks = 0usize;
                loop {
                    match step(&writer) {
                        Ok(true) => blocks += 1,
                        Ok(false) => break,
                        Err(error) => {
                            tracing::warn!(error = %format!("{error:#}"), "giving old events their columns");
                            break;
                        }
                    }
                    match stopped.recv_timeout(PAUSE) {
                        Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
                if blocks > 0 {
                    tracing::info!(blocks, "old events have their columns");
                }
            })
            .context("starting the column backfill thread")?;
        Ok(Backfill { _stop: stop })
    }
}

/// One block; false when there was none left.
fn step(writer: &mpsc::WeakSender<Request>) -> anyhow::Result<bool> {
    let stopped = || anyhow!("the embedded store writer has stopped");
    let sender = writer.upgrade().ok_or_else(stopped)?;
    let (reply, answer) = oneshot::channel();
    let task = move |writer: &mut Writer, conn: &mut Connection| {
        let _ = reply.send(writer.backfill_columns(conn).map_err(CommitFailed::new));
    };
    sender.blocking_send(Request::Maintain(Box::new(task))).map_err(|_| stopped())?;
    drop(sender);
    answer.blocking_recv().map_err(|_| stopped())?.context("a block of columns failed")
}

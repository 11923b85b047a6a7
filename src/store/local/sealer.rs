//! Seals blocks of columns off the writer thread. The writer hands over the column values of
//! each block as it completes; this thread encodes them (dictionaries, zstd) and asks the writer
//! to store the frames and move `columns_upto`, in one transaction — so the single writer thread
//! spends its time in SQLite, not in encoding. Until a block is stored, reads take its rows from
//! their bodies; a block handed over but not stored when the process stops is sealed again from
//! the bodies at the next start ([`super::write::Writer::load`]).

use std::sync::mpsc as std_mpsc;

use anyhow::{Context as _, anyhow};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::columns::{SealJob, Sealed};
use super::write::{Request, Writer};
use crate::sqlite::CommitFailed;

/// Starts the thread; it stops when the writer drops its end of `jobs`.
pub(super) fn spawn(jobs: std_mpsc::Receiver<SealJob>, writer: mpsc::WeakSender<Request>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("local-store-sealer".into())
        .spawn(move || {
            for job in jobs {
                let sealed = job.seal();
                // The values are freed here, not on the writer thread.
                drop(job);
                let stored = sealed.and_then(|sealed| store(&writer, sealed));
                if let Err(error) = stored {
                    // Later blocks could not be stored past this one: the columns end here until
                    // the next start seals from the mark, reads use the rows, and the writer stops
                    // waiting for this thread (it would refuse appends for it forever).
                    tracing::error!(
                        error = %format!("{error:#}"),
                        "sealing a block of columns failed: columns stop until the next start"
                    );
                    stop_waiting(&writer);
                    return;
                }
            }
        })
        .context("starting the column sealer thread")?;
    Ok(())
}

/// Tells the writer this thread has stopped.
fn stop_waiting(writer: &mpsc::WeakSender<Request>) {
    if let Some(sender) = writer.upgrade() {
        let _ = sender.blocking_send(Request::Maintain(Box::new(|writer: &mut Writer, _: &mut Connection| {
            writer.sealer_stopped()
        })));
    }
}

/// Asks the writer to store a sealed block, and waits for it (one block in flight at a time).
fn store(writer: &mpsc::WeakSender<Request>, sealed: Sealed) -> anyhow::Result<()> {
    let stopped = || anyhow!("the embedded store writer has stopped");
    let sender = writer.upgrade().ok_or_else(stopped)?;
    let (reply, answer) = oneshot::channel();
    let task = move |writer: &mut Writer, conn: &mut Connection| {
        let _ = reply.send(writer.store_sealed(conn, sealed).map_err(CommitFailed::new));
    };
    sender.blocking_send(Request::Maintain(Box::new(task))).map_err(|_| stopped())?;
    drop(sender);
    answer.blocking_recv().map_err(|_| stopped())?.context("storing a block of columns")
}

//! The one thread that writes a database. It waits for a request, then takes every other one
//! already waiting and commits them together (group commit): many requests share one
//! transaction and one fsync, and nothing else ever writes, so writes never contend.

use std::time::Duration;

use anyhow::Context as _;
use rusqlite::Connection;
use tokio::sync::mpsc;

/// What the writer thread does after a round of commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCommit {
    /// Wait for the next request.
    Wait,
    /// Run another round after this long even if nothing new arrives: work of the last round is
    /// waiting to be tried again.
    RetryIn(Duration),
}

/// Starts the writer thread of `conn` and returns where to send it requests (at most
/// `queue_depth` wait; senders then wait too). Each round hands `commit` the requests waiting
/// (at most `max_per_commit`); the thread ends once every sender is gone.
pub fn spawn_writer<R: Send + 'static>(
    name: &str,
    mut conn: Connection,
    queue_depth: usize,
    max_per_commit: usize,
    mut commit: impl FnMut(&mut Connection, Vec<R>) -> AfterCommit + Send + 'static,
) -> anyhow::Result<mpsc::Sender<R>> {
    let (requests, mut queue) = mpsc::channel(queue_depth);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut after = AfterCommit::Wait;
            while let Some(batch) = next_batch(&mut queue, max_per_commit, after) {
                after = commit(&mut conn, batch);
            }
        })
        .with_context(|| format!("starting the {name} thread"))?;
    Ok(requests)
}

/// The requests of the next round. After [`AfterCommit::Wait`]: waits for one, then takes every
/// other one already waiting, up to `max`. After [`AfterCommit::RetryIn`]: sleeps, then takes
/// what is waiting, perhaps nothing. `None` once every sender is gone and nothing is left.
fn next_batch<R>(queue: &mut mpsc::Receiver<R>, max: usize, after: AfterCommit) -> Option<Vec<R>> {
    let mut batch = Vec::new();
    match after {
        AfterCommit::Wait => batch.push(queue.blocking_recv()?),
        AfterCommit::RetryIn(delay) => std::thread::sleep(delay),
    }
    while batch.len() < max {
        match queue.try_recv() {
            Ok(request) => batch.push(request),
            Err(mpsc::error::TryRecvError::Disconnected) if batch.is_empty() => return None,
            Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_everything_waiting_up_to_the_maximum() {
        let (sender, mut queue) = mpsc::channel(10);
        for i in 0..5 {
            sender.try_send(i).expect("room");
        }
        assert_eq!(next_batch(&mut queue, 3, AfterCommit::Wait), Some(vec![0, 1, 2]));
        assert_eq!(next_batch(&mut queue, 3, AfterCommit::Wait), Some(vec![3, 4]));
        drop(sender);
        assert_eq!(next_batch(&mut queue, 3, AfterCommit::Wait), None);
    }

    #[test]
    fn a_retry_round_comes_even_when_nothing_new_arrives() {
        let (sender, mut queue) = mpsc::channel::<i32>(10);
        assert_eq!(next_batch(&mut queue, 3, AfterCommit::RetryIn(Duration::from_millis(1))), Some(vec![]));
        sender.try_send(7).expect("room");
        assert_eq!(next_batch(&mut queue, 3, AfterCommit::RetryIn(Duration::ZERO)), Some(vec![7]));
        drop(sender);
        assert_eq!(next_batch(&mut queue, 3, AfterCommit::RetryIn(Duration::ZERO)), None);
    }

    #[test]
    fn the_thread_commits_every_request_and_ends_with_its_senders() {
        let conn = Connection::open_in_memory().expect("db");
        let (seen, rounds) = std::sync::mpsc::channel();
        let requests = spawn_writer("test-writer", conn, 8, 4, move |_, batch: Vec<i32>| {
            let _ = seen.send(batch);
            AfterCommit::Wait
        })
        .expect("thread");
        for i in 0..6 {
            requests.blocking_send(i).expect("send");
        }
        drop(requests);
        let committed: Vec<i32> = rounds.iter().flatten().collect();
        assert_eq!(committed, [0, 1, 2, 3, 4, 5]);
    }
}

//! Group commit, shared by the embedded store and the spool: one thread owns the database
//! connection and commits every request waiting in its queue in one transaction, so many
//! requests share one fsync.

use tokio::sync::mpsc;

/// Waits for a request, then takes every other one already waiting, up to `max` in all.
/// `None` once every sender is gone.
pub fn next_batch<R>(queue: &mut mpsc::Receiver<R>, max: usize) -> Option<Vec<R>> {
    let first = queue.blocking_recv()?;
    let mut batch = vec![first];
    while batch.len() < max {
        match queue.try_recv() {
            Ok(request) => batch.push(request),
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
        assert_eq!(next_batch(&mut queue, 3), Some(vec![0, 1, 2]));
        assert_eq!(next_batch(&mut queue, 3), Some(vec![3, 4]));
        drop(sender);
        assert_eq!(next_batch(&mut queue, 3), None);
    }
}

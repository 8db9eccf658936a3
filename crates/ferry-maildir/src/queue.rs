//! Deliveries carried out on worker threads, so that the thread reading
//! messages (from an IMAP connection, say) never waits for a disk.
//!
//! The caller hands a message to a [`DeliveryQueue`], either as a begun
//! [`Delivery`] or as the folder and [`NewMessage`] to begin it with (the
//! worker then creates the `tmp/` file too: creating files is not cheap on
//! a large file system), and then feeds the message's bytes; a worker
//! converts, fingerprints and writes them and finishes the delivery
//! (mtime, fsync, rename), while the caller goes on reading the next
//! message. Messages go to the workers in turn,
//! so their fsyncs overlap. Each finished delivery comes back as a
//! [`Finished`], still [`Unsynced`]: the caller fsyncs the directories and
//! only then records the messages, exactly as without the queue.
//!
//! Memory stays bounded: each worker takes a few chunks ahead at most, and
//! the caller blocks when it is that far ahead. A delivery that is
//! abandoned, or whose writes failed, is dropped by its worker, which
//! removes its `tmp/` file.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::{self, JoinHandle};

use crate::deliver::{Delivered, Delivery, NewMessage};
use crate::durable::Unsynced;
use crate::error::{Error, Result};
use crate::folder::Folder;

/// How many jobs a worker may have waiting.
const JOBS_AHEAD: usize = 16;

/// What the caller sends a worker.
enum Job {
    /// A message begins, with its caller-chosen ticket.
    Start(u64, Box<Delivery>),
    /// A message begins: the worker begins its delivery.
    Begin(u64, Folder, Box<NewMessage>),
    /// Its next bytes.
    Data(Vec<u8>),
    /// It is complete: finish it.
    End,
    /// It will not be completed: drop it.
    Abandon,
}

/// A delivery a worker finished (or failed).
#[derive(Debug)]
pub struct Finished {
    /// The ticket given to [`DeliveryQueue::start`].
    pub ticket: u64,
    /// The key the message was delivered under.
    pub key: String,
    /// The delivery's outcome.
    pub result: Result<Unsynced<Delivered>>,
    /// Whether the delivery had begun (its `tmp/` file was created): an
    /// error before is the caller's to report as is, never a sign that the
    /// message is there already.
    pub begun: bool,
}

struct Worker {
    jobs: SyncSender<Job>,
    thread: JoinHandle<()>,
}

/// Delivery workers; see the module docs.
pub struct DeliveryQueue {
    workers: Vec<Worker>,
    /// The worker the next message goes to.
    next: usize,
    /// The worker of the message being fed.
    current: Option<usize>,
    finished: Receiver<Finished>,
    in_flight: usize,
}

impl std::fmt::Debug for DeliveryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryQueue")
            .field("workers", &self.workers.len())
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl DeliveryQueue {
    /// A queue with `workers` threads (at least one).
    pub fn new(workers: usize) -> std::io::Result<DeliveryQueue> {
        let (done, finished) = channel();
        let workers = (0..workers.max(1))
            .map(|i| spawn_worker(i, done.clone()))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(DeliveryQueue {
            workers,
            next: 0,
            current: None,
            finished,
            in_flight: 0,
        })
    }

    /// Hands over a begun delivery; the bytes that follow are its own. A
    /// message still being fed is abandoned.
    pub fn start(&mut self, ticket: u64, delivery: Delivery) {
        self.hand_over(Job::Start(ticket, Box::new(delivery)));
    }

    /// Hands over a message to deliver into `folder`; the worker begins
    /// the delivery, and an error doing so comes back as its outcome.
    pub fn begin(&mut self, ticket: u64, folder: &Folder, msg: NewMessage) {
        self.hand_over(Job::Begin(ticket, folder.clone(), Box::new(msg)));
    }

    fn hand_over(&mut self, job: Job) {
        self.abandon();
        let worker = self.next;
        self.next = (self.next + 1) % self.workers.len();
        self.in_flight += 1;
        self.current = Some(worker);
        self.send(worker, job);
    }

    /// The next bytes of the current message.
    pub fn write(&mut self, data: &[u8]) {
        if let Some(worker) = self.current {
            self.send(worker, Job::Data(data.to_vec()));
        }
    }

    /// The current message is complete: it is finished in the background.
    pub fn end(&mut self) {
        if let Some(worker) = self.current.take() {
            self.send(worker, Job::End);
        }
    }

    /// The current message will not be completed: its `tmp/` file goes.
    pub fn abandon(&mut self) {
        if let Some(worker) = self.current.take() {
            self.send(worker, Job::Abandon);
        }
    }

    /// The deliveries finished so far, without waiting.
    pub fn finished(&mut self) -> Vec<Finished> {
        let done: Vec<Finished> = self.finished.try_iter().collect();
        self.in_flight -= done.len();
        done
    }

    /// Every delivery handed over and not yet returned, waiting for them
    /// (the current message, if any, is abandoned first).
    pub fn wait(&mut self) -> Vec<Finished> {
        self.abandon();
        let mut done = Vec::with_capacity(self.in_flight);
        while self.in_flight > 0 {
            match self.finished.recv() {
                Ok(finished) => {
                    done.push(finished);
                    self.in_flight -= 1;
                }
                // Every worker is gone (one panicked): nothing more comes.
                Err(_) => break,
            }
        }
        done
    }

    fn send(&mut self, worker: usize, job: Job) {
        // A worker that is gone has panicked; what it held is lost and
        // `wait` stops waiting for it.
        if self.workers[worker].jobs.send(job).is_err() {
            self.in_flight = self.in_flight.saturating_sub(1);
            self.current = None;
        }
    }
}

impl Drop for DeliveryQueue {
    fn drop(&mut self) {
        self.abandon();
        for worker in std::mem::take(&mut self.workers) {
            drop(worker.jobs);
            let _ = worker.thread.join();
        }
    }
}

fn spawn_worker(index: usize, done: Sender<Finished>) -> std::io::Result<Worker> {
    let (jobs, inbox) = sync_channel(JOBS_AHEAD);
    let thread = thread::Builder::new()
        .name(format!("maildir-delivery-{index}"))
        .spawn(move || work(&inbox, &done))?;
    Ok(Worker { jobs, thread })
}

/// The message a worker is delivering.
struct Current {
    ticket: u64,
    key: String,
    begun: bool,
    /// `None` when beginning it failed.
    delivery: Option<Box<Delivery>>,
    /// The first error; what arrives after it is dropped.
    failure: Option<Error>,
}

impl Current {
    fn begun(ticket: u64, delivery: Box<Delivery>) -> Current {
        let key = delivery.message().key.clone();
        Current {
            ticket,
            key,
            begun: true,
            delivery: Some(delivery),
            failure: None,
        }
    }

    fn begin(ticket: u64, folder: &Folder, msg: &NewMessage) -> Current {
        let (delivery, failure) = match folder.begin_delivery(msg) {
            Ok(delivery) => (Some(Box::new(delivery)), None),
            Err(error) => (None, Some(error)),
        };
        Current {
            ticket,
            key: msg.key.clone(),
            begun: delivery.is_some(),
            delivery,
            failure,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if let (Some(delivery), None) = (self.delivery.as_mut(), &self.failure) {
            self.failure = delivery.write(bytes).err();
        }
    }

    /// Finishes the delivery, or drops it (its `tmp/` file goes) before
    /// the failure is told.
    fn finish(self) -> Finished {
        let result = match (self.failure, self.delivery) {
            (Some(error), delivery) => {
                drop(delivery);
                Err(error)
            }
            (None, Some(delivery)) => delivery.finish(),
            (None, None) => Err(Error::Abandoned {
                key: self.key.clone(),
            }),
        };
        Finished {
            ticket: self.ticket,
            key: self.key,
            result,
            begun: self.begun,
        }
    }

    fn abandon(mut self) -> Finished {
        drop(self.delivery.take());
        Finished {
            ticket: self.ticket,
            result: Err(Error::Abandoned {
                key: self.key.clone(),
            }),
            key: self.key,
            begun: self.begun,
        }
    }
}

/// One message at a time: write what arrives, finish it at the end. A
/// panic while handling a job fails the message at hand (its `tmp/` file
/// is removed as the delivery unwinds) and the worker goes on, so that
/// every message handed over comes back and nobody waits for ever.
fn work(inbox: &Receiver<Job>, done: &Sender<Finished>) {
    let mut current: Option<Current> = None;
    for job in inbox {
        let at_hand = current.as_ref().map(|c| (c.ticket, c.key.clone(), c.begun));
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| handle(job, &mut current)));
        let finished = match outcome {
            Ok(finished) => finished,
            Err(_) => {
                let started = current.take().map(|c| (c.ticket, c.key.clone(), c.begun));
                started.or(at_hand).map(|(ticket, key, begun)| Finished {
                    ticket,
                    result: Err(Error::Io {
                        op: "delivering",
                        path: key.clone().into(),
                        source: std::io::Error::other("the delivery thread failed (a bug)"),
                    }),
                    key,
                    begun,
                })
            }
        };
        if let Some(finished) = finished {
            let _ = done.send(finished);
        }
    }
}

/// One job; a message that ends (or is given up) comes back.
fn handle(job: Job, current: &mut Option<Current>) -> Option<Finished> {
    match job {
        Job::Start(ticket, delivery) => {
            *current = Some(Current::begun(ticket, delivery));
            None
        }
        Job::Begin(ticket, folder, msg) => {
            *current = Some(Current::begin(ticket, &folder, &msg));
            None
        }
        Job::Data(bytes) => {
            if let Some(current) = current.as_mut() {
                current.write(&bytes);
            }
            None
        }
        Job::End => current.take().map(Current::finish),
        Job::Abandon => current.take().map(Current::abandon),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Layout, NewMessage, Tree};

    #[test]
    fn deliveries_finish_in_the_background_and_abandoned_ones_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = Tree::create(dir.path(), Layout::Fs).expect("tree");
        let inbox = crate::FolderName::inbox();
        let folder = tree.create_folder(&inbox).expect("inbox");
        let mut queue = DeliveryQueue::new(3).expect("queue");
        for ticket in 0..10u64 {
            let msg = NewMessage::new();
            match ticket % 2 {
                0 => queue.start(ticket, folder.begin_delivery(&msg).expect("begin")),
                _ => queue.begin(ticket, &folder, msg),
            }
            queue.write(format!("Subject: {ticket}\r\n\r\n").as_bytes());
            queue.write(b"body\r\n");
            if ticket != 4 {
                queue.end();
            }
        }
        let mut done = queue.wait();
        done.sort_by_key(|f| f.ticket);
        assert_eq!(done.len(), 10);
        for finished in done {
            let ok = finished.result.map(|r| r.sync().expect("sync"));
            match finished.ticket {
                4 => assert!(matches!(ok, Err(Error::Abandoned { .. }))),
                _ => assert_eq!(ok.expect("delivered").crlf_size, 20),
            }
        }
        let listing = folder.scan().expect("scan");
        assert_eq!(listing.len(), 9);
        let tmp = std::fs::read_dir(dir.path().join("INBOX/tmp")).expect("tmp");
        assert_eq!(tmp.count(), 0, "an abandoned delivery leaves no tmp file");
    }

    #[test]
    fn a_panicking_delivery_fails_alone_and_every_message_comes_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = Tree::create(dir.path(), Layout::Fs).expect("tree");
        let inbox = crate::FolderName::inbox();
        let hook: crate::StepHook = std::sync::Arc::new(|step, _: &std::path::Path| {
            if step == crate::Step::Write {
                panic!("a bug while writing");
            }
            Ok(())
        });
        let broken = tree
            .create_folder(&inbox)
            .expect("inbox")
            .with_step_hook(hook);
        let mut queue = DeliveryQueue::new(2).expect("queue");
        for ticket in 0..4u64 {
            queue.begin(ticket, &broken, NewMessage::new());
            queue.write(b"Subject: x\r\n\r\nbody\r\n");
            queue.end();
        }
        let done = queue.wait();
        assert_eq!(done.len(), 4, "every message comes back");
        assert!(done.iter().all(|f| f.result.is_err()));
        let tmp = std::fs::read_dir(dir.path().join("INBOX/tmp")).expect("tmp");
        assert_eq!(tmp.count(), 0, "nothing left in tmp/");
    }
}

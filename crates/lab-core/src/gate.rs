//! One blocking read per run in flight, and never a wait on a stuck one.
//!
//! Everything the Lab reads of a run (a refresh of its format reader, a
//! listing of its artifacts) goes to a blocking thread through
//! [`Gate::read`] (from async code) or [`Gate::read_sync`] (from a thread
//! that may block). A second read of the same run waits for the one in
//! flight instead of starting its own, so a run whose files hang a reader
//! holds at most one thread however many requests name it. A read that has
//! not returned within [`STUCK_AFTER`] makes the run *stuck*: callers get
//! [`Stuck`] at once (the run is shown `available: false` with the reason)
//! and no new read of it starts until the stuck one returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use lab_registry::RunId;
use tokio::sync::Notify;

/// How long a read may take before its run is stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(5);

/// A read of the run did not return in time; none was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stuck {
    /// How long the read in flight has been running.
    pub for_secs: u64,
}

impl Stuck {
    /// The reason a run is unavailable, for its summary and errors.
    pub fn reason(self) -> String {
        format!(
            "a read of its files has not returned for {} s (a FIFO, a hung mount?); it is not read again until that read returns",
            self.for_secs.max(STUCK_AFTER.as_secs())
        )
    }
}

struct Flight {
    started: Instant,
    done: AtomicBool,
    notify: Notify,
    finished: Mutex<bool>,
    finished_cv: Condvar,
}

impl Flight {
    fn stuck(&self) -> Stuck {
        Stuck {
            for_secs: self.started.elapsed().as_secs(),
        }
    }
}

type Flights = Arc<Mutex<HashMap<RunId, Arc<Flight>>>>;

/// The reads in flight, by run.
#[derive(Default)]
pub struct Gate {
    flights: Flights,
    limit: Option<Duration>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

/// Removes its flight and wakes the waiters when the read ends (returned,
/// panicked or dropped unrun).
struct Landing {
    flights: Flights,
    id: RunId,
    flight: Arc<Flight>,
}

impl Drop for Landing {
    fn drop(&mut self) {
        {
            let mut flights = crate::lock(&self.flights);
            if flights
                .get(&self.id)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                flights.remove(&self.id);
            }
        }
        self.flight.done.store(true, Ordering::Release);
        *crate::lock(&self.flight.finished) = true;
        self.flight.finished_cv.notify_all();
        self.flight.notify.notify_waiters();
    }
}

enum Turn {
    /// No read in flight: this caller starts one.
    Mine(Landing),
    /// One is in flight.
    Theirs(Arc<Flight>),
}

impl Gate {
    #[cfg(test)]
    fn with_limit(limit: Duration) -> Self {
        Self {
            flights: Flights::default(),
            limit: Some(limit),
        }
    }

    fn limit(&self) -> Duration {
        self.limit.unwrap_or(STUCK_AFTER)
    }

    fn turn(&self, id: &RunId) -> Turn {
        let mut flights = crate::lock(&self.flights);
        if let Some(flight) = flights.get(id) {
            return Turn::Theirs(Arc::clone(flight));
        }
        let flight = Arc::new(Flight {
            started: Instant::now(),
            done: AtomicBool::new(false),
            notify: Notify::new(),
            finished: Mutex::new(false),
            finished_cv: Condvar::new(),
        });
        flights.insert(id.clone(), Arc::clone(&flight));
        Turn::Mine(Landing {
            flights: Arc::clone(&self.flights),
            id: id.clone(),
            flight,
        })
    }

    /// Whether a read of `id` has been in flight longer than the limit.
    #[cfg(test)]
    pub(crate) fn stuck(&self, id: &RunId) -> Option<Stuck> {
        let flights = crate::lock(&self.flights);
        let flight = flights.get(id)?;
        (flight.started.elapsed() >= self.limit()).then(|| flight.stuck())
    }

    /// Runs `work` (blocking) for run `id` on a blocking thread, after any
    /// read of it in flight, and waits for it at most the limit.
    pub async fn read<T: Send + 'static>(
        &self,
        id: &RunId,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Stuck> {
        let limit = self.limit();
        let mut work = Some(work);
        loop {
            match self.turn(id) {
                Turn::Mine(landing) => {
                    let started = landing.flight.started;
                    let Some(work) = work.take() else {
                        // NOTE: unreachable — `work` is taken only here, and
                        // this arm returns.
                        return Err(Stuck { for_secs: 0 });
                    };
                    let handle = tokio::task::spawn_blocking(move || {
                        let _landing = landing;
                        work()
                    });
                    return match tokio::time::timeout(limit, handle).await {
                        Ok(Ok(out)) => Ok(out),
                        // A panicking reader is a bug; its run is shown as
                        // unreadable rather than taking the request down.
                        Ok(Err(_)) => Err(Stuck { for_secs: 0 }),
                        Err(_) => Err(Stuck {
                            for_secs: started.elapsed().as_secs(),
                        }),
                    };
                }
                Turn::Theirs(flight) => {
                    let waited = flight.started.elapsed();
                    let Some(left) = limit.checked_sub(waited) else {
                        return Err(flight.stuck());
                    };
                    let landed = flight.notify.notified();
                    tokio::pin!(landed);
                    landed.as_mut().enable();
                    if flight.done.load(Ordering::Acquire) {
                        continue;
                    }
                    if tokio::time::timeout(left, landed).await.is_err() {
                        return Err(flight.stuck());
                    }
                }
            }
        }
    }

    /// [`Gate::read`] for a caller on a thread that may block (the
    /// background summariser, a list being summarised): `work` runs on a
    /// blocking thread of the current runtime (or a thread of its own
    /// outside one), and this waits at most the limit.
    pub(crate) fn read_sync<T: Send + 'static>(
        &self,
        id: &RunId,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Stuck> {
        let limit = self.limit();
        let mut work = Some(work);
        loop {
            match self.turn(id) {
                Turn::Mine(landing) => {
                    let started = landing.flight.started;
                    let Some(work) = work.take() else {
                        return Err(Stuck { for_secs: 0 });
                    };
                    let (tx, rx) = std::sync::mpsc::sync_channel(1);
                    let job = move || {
                        let _landing = landing;
                        let _ = tx.send(work());
                    };
                    match tokio::runtime::Handle::try_current() {
                        Ok(handle) => drop(handle.spawn_blocking(job)),
                        Err(_) => {
                            if std::thread::Builder::new()
                                .name("lab-read".into())
                                .spawn(job)
                                .is_err()
                            {
                                return Err(Stuck { for_secs: 0 });
                            }
                        }
                    }
                    return rx.recv_timeout(limit).map_err(|_| Stuck {
                        for_secs: started.elapsed().as_secs(),
                    });
                }
                Turn::Theirs(flight) => {
                    let Some(left) = limit.checked_sub(flight.started.elapsed()) else {
                        return Err(flight.stuck());
                    };
                    let finished = crate::lock(&flight.finished);
                    let (finished, _) = flight
                        .finished_cv
                        .wait_timeout_while(finished, left, |done| !*done)
                        .unwrap_or_else(|p| p.into_inner());
                    if !*finished {
                        return Err(flight.stuck());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn id(s: &str) -> RunId {
        RunId::parse(s).unwrap()
    }

    /// A read that blocks until the test lets it go.
    fn held() -> (
        Arc<(Mutex<bool>, Condvar)>,
        impl FnOnce() -> u32 + Send + 'static,
    ) {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let g = Arc::clone(&gate);
        (gate, move || {
            let (lock, cv) = &*g;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            7
        })
    }

    fn release(gate: &(Mutex<bool>, Condvar)) {
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_read_holds_one_thread_and_later_callers_are_answered_at_once() {
        let gate = Gate::with_limit(Duration::from_millis(200));
        let run = id("stuck");
        let (valve, work) = held();
        let started = Arc::new(AtomicUsize::new(0));
        assert_eq!(gate.read(&run, work).await, Err(Stuck { for_secs: 0 }));
        assert!(gate.stuck(&run).is_some());
        // Every later read is refused without running: the count stays 0.
        for _ in 0..50 {
            let s = Arc::clone(&started);
            let out = gate
                .read(&run, move || s.fetch_add(1, Ordering::SeqCst))
                .await;
            assert!(out.is_err());
        }
        assert_eq!(started.load(Ordering::SeqCst), 0);
        // Another run is read as usual meanwhile.
        assert_eq!(gate.read(&id("other"), || 1).await, Ok(1));
        // Once the stuck read returns, the run is read again.
        release(&valve);
        for _ in 0..100 {
            if gate.stuck(&run).is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(gate.read(&run, || 2).await, Ok(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_read_waits_for_the_one_in_flight_instead_of_starting_its_own() {
        let gate = Arc::new(Gate::with_limit(Duration::from_secs(30)));
        let run = id("slow");
        let (valve, work) = held();
        let first = {
            let gate = Arc::clone(&gate);
            let run = run.clone();
            tokio::spawn(async move { gate.read(&run, work).await })
        };
        while crate::lock(&gate.flights).is_empty() {
            tokio::task::yield_now().await;
        }
        let ran = Arc::new(AtomicBool::new(false));
        let second = {
            let gate = Arc::clone(&gate);
            let run = run.clone();
            let ran = Arc::clone(&ran);
            tokio::spawn(async move {
                gate.read(&run, move || {
                    ran.store(true, Ordering::SeqCst);
                    3
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!ran.load(Ordering::SeqCst), "the second read started early");
        release(&valve);
        assert_eq!(first.await.unwrap(), Ok(7));
        assert_eq!(second.await.unwrap(), Ok(3));
    }

    #[test]
    fn a_blocking_caller_gets_stuck_too_and_never_waits_twice() {
        let gate = Gate::with_limit(Duration::from_millis(100));
        let run = id("sync");
        let (valve, work) = held();
        assert!(gate.read_sync(&run, work).is_err());
        let before = Instant::now();
        assert!(gate.read_sync(&run, || 1).is_err());
        assert!(before.elapsed() < Duration::from_secs(5));
        release(&valve);
        for _ in 0..500 {
            if gate.stuck(&run).is_none() && crate::lock(&gate.flights).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(gate.read_sync(&run, || 5), Ok(5));
    }
}

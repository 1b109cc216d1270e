//! Single flight: concurrent callers asking for the same key share one call.
//!
//! The status route uses it so that every poll of one stream that arrives while an upstream
//! status call for that stream is in flight waits for that call and relays its answer, instead
//! of making its own. An answer is therefore never older than the moment the request arrived
//! minus one upstream round trip, and a stream polled by many tabs (or a flood of polls) costs
//! the upstream one call at a time, not one per poll.
//!
//! The call runs inside the first caller's request. If that request goes away mid-call, one of
//! the callers still waiting takes the call over (`tokio::sync::OnceCell::get_or_init`), so no
//! waiter is left without an answer. The entry of a key is removed as soon as its call ends (or
//! is abandoned by every caller): a caller arriving after that starts a new call, and the map
//! holds only keys with a call in flight.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

type Cell<T> = Arc<OnceCell<T>>;

/// Calls in flight by key.
pub struct SingleFlight<T> {
    in_flight: Mutex<HashMap<String, Cell<T>>>,
}

impl<T> std::fmt::Debug for SingleFlight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleFlight").field("in_flight", &self.len()).finish()
    }
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        Self { in_flight: Mutex::new(HashMap::new()) }
    }
}

/// Whether a caller made the call or shared another caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flight {
    /// This caller ran the call.
    Led,
    /// This caller waited for a call already in flight.
    Joined,
}

impl<T: Clone> SingleFlight<T> {
    /// The answer of `call` for `key`: from the call already in flight for `key`, if any, else
    /// from `call()` run now (and shared with whoever asks meanwhile).
    pub async fn run<F, Fut>(&self, key: &str, call: F) -> (T, Flight)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let cell = self.cell(key);
        let mut led = false;
        let value = cell
            .get_or_init(|| {
                led = true;
                let guard = Forget { flight: self, key, cell: &cell };
                async move {
                    let value = call().await;
                    drop(guard);
                    value
                }
            })
            .await
            .clone();
        (value, if led { Flight::Led } else { Flight::Joined })
    }

    fn cell(&self, key: &str) -> Cell<T> {
        let mut map = self.lock();
        if let Some(cell) = map.get(key) {
            return cell.clone();
        }
        let cell = Cell::default();
        map.insert(key.to_owned(), cell.clone());
        cell
    }
}

impl<T> SingleFlight<T> {
    /// How many keys have a call in flight.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no call is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cell<T>>> {
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes a key's entry when its call ends or is dropped, if the entry is still that call's.
struct Forget<'a, T> {
    flight: &'a SingleFlight<T>,
    key: &'a str,
    cell: &'a Cell<T>,
}

impl<T> Drop for Forget<'_, T> {
    fn drop(&mut self) {
        let mut map = self.flight.lock();
        if map.get(self.key).is_some_and(|c| Arc::ptr_eq(c, self.cell)) {
            map.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;

    #[tokio::test]
    async fn callers_during_a_call_share_it_and_later_callers_start_a_new_one() {
        let flight = Arc::new(SingleFlight::<usize>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (flight, calls, release) = (flight.clone(), calls.clone(), release.clone());
            tasks.push(tokio::spawn(async move {
                flight
                    .run("s1", || async move {
                        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                        release.notified().await;
                        n
                    })
                    .await
            }));
        }
        // One call runs; the other tasks reach the flight and wait for it.
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        release.notify_waiters();
        let mut led = 0;
        for t in tasks {
            let (v, how) = t.await.unwrap();
            assert_eq!(v, 1, "every caller got the one call's answer");
            led += usize::from(how == Flight::Led);
        }
        assert_eq!((calls.load(Ordering::SeqCst), led), (1, 1));
        assert!(flight.is_empty(), "the entry goes with its call");

        let (v, how) = flight.run("s1", || async { 2 }).await;
        assert_eq!((v, how), (2, Flight::Led), "a caller after the call makes a new one");
    }

    #[tokio::test]
    async fn keys_do_not_share() {
        let flight = SingleFlight::<&'static str>::default();
        let (a, b) = tokio::join!(flight.run("a", || async { "a" }), flight.run("b", || async { "b" }));
        assert_eq!((a.0, b.0), ("a", "b"));
    }

    #[tokio::test]
    async fn a_waiter_takes_over_when_the_leader_goes_away() {
        let flight = Arc::new(SingleFlight::<u8>::default());
        let started = Arc::new(Notify::new());
        let leader = {
            let (flight, started) = (flight.clone(), started.clone());
            tokio::spawn(async move {
                flight
                    .run("s", || async move {
                        started.notify_one();
                        std::future::pending::<u8>().await
                    })
                    .await
            })
        };
        started.notified().await;
        let waiter = {
            let flight = flight.clone();
            tokio::spawn(async move { flight.run("s", || async { 7 }).await })
        };
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        leader.abort();
        let (v, _) = waiter.await.unwrap();
        assert_eq!(v, 7, "the waiter ran the call itself");
        assert!(flight.is_empty());
    }
}

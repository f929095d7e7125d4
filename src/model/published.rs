//! [`Published`]: the view of the store, and what each output derives from
//! it, computed at most once per generation of the store (and again when a
//! target turns stale). Concurrent readers share one view, and whatever an
//! output keeps per view (the exposition caches its renderings here): a
//! scrape, a health check and the topology API read the same judgement.
//!
//! Checking that the cache holds costs an atomic load and a clock read,
//! whatever the number of targets; the lock is held for that check and for
//! building a new view, never while an output renders, so a health check
//! never waits behind a scrape's render.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex;

use super::snapshot::Store;
use super::view::View;

/// What an output keeps per view: made empty with each new view, filled by
/// the first reader that asks (see `crate::render::exposition::Renderings`).
pub trait PerView: Send + Sync + 'static {
    fn for_view(view: &View) -> Self;
}

/// The store's current view and what outputs keep for it (`C`).
pub struct Published<C> {
    store: Arc<Store>,
    current: Mutex<Option<Arc<Generation<C>>>>,
}

/// Everything derived from one generation of the store.
pub struct Generation<C> {
    generation: u64,
    pub view: Arc<View>,
    /// What the outputs keep for this view.
    pub kept: C,
}

impl<C: PerView> Published<C> {
    pub fn new(store: Arc<Store>) -> Published<C> {
        Published {
            store,
            current: Mutex::new(None),
        }
    }

    /// The view every reader shares, computed at most once per version.
    pub async fn view(&self) -> Arc<View> {
        self.current().await.view.clone()
    }

    /// The current generation: the view, and what outputs keep for it.
    pub async fn current(&self) -> Arc<Generation<C>> {
        let mut current = self.current.lock().await;
        let generation = self.store.generation();
        let now = Instant::now();
        if let Some(g) = current.as_ref() {
            if g.generation == generation && g.view.holds_at(now) {
                return g.clone();
            }
        }
        // One instant for the staleness of every target and for how long
        // the view holds: a target turning stale in between cannot be shown
        // fresh past its limit.
        let mut view = View::build_at(
            self.store.all_at(now),
            &self.store.cluster_config(),
            self.store.reload_status(),
            now,
        );
        view.heartbeat_writers = self.store.heartbeat_writers();
        let kept = C::for_view(&view);
        let g = Arc::new(Generation {
            generation,
            view: Arc::new(view),
            kept,
        });
        *current = Some(g.clone());
        g
    }
}

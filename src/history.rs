//! Logged interactions: every (x, a, r, p) a learner has seen, with the
//! propensity p = π(a | x) the action was sampled with (docs/ARCHITECTURE.md, "Learners").

use crate::error::Result;
use crate::policy::check_context;
use crate::real::Real;

/// One logged interaction, borrowed from a [`History`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction<'a, F> {
    /// The context x.
    pub context: &'a [F],
    /// The action a.
    pub action: usize,
    /// The reward r.
    pub reward: F,
    /// The propensity p = π(a | x) under the policy that sampled a.
    pub propensity: F,
}

/// An append-only log of interactions with d-dimensional contexts.
///
/// Propensities are kept for every interaction: 8 bytes each that make
/// off-policy evaluation and importance weighting possible later.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct History<F> {
    d: usize,
    contexts: Vec<F>,
    actions: Vec<usize>,
    rewards: Vec<F>,
    propensities: Vec<F>,
}

impl<F: Real> History<F> {
    /// An empty log for contexts of length `d`.
    pub fn new(d: usize) -> Self {
        Self {
            d,
            contexts: Vec::new(),
            actions: Vec::new(),
            rewards: Vec::new(),
            propensities: Vec::new(),
        }
    }

    /// Appends an interaction. Only the context is checked here (length and
    /// finiteness); learners check the rest before they log.
    ///
    /// # Errors
    /// [`crate::Error::ContextLength`], [`crate::Error::NonFiniteContext`].
    pub fn push(&mut self, x: &[F], action: usize, reward: F, propensity: F) -> Result<()> {
        check_context(x, self.d)?;
        self.push_unchecked(x, action, reward, propensity);
        Ok(())
    }

    /// [`History::push`] for a context already checked.
    pub(crate) fn push_unchecked(&mut self, x: &[F], action: usize, reward: F, propensity: F) {
        self.contexts.extend_from_slice(x);
        self.actions.push(action);
        self.rewards.push(reward);
        self.propensities.push(propensity);
    }

    /// Checks that the columns have one entry per interaction.
    pub(crate) fn validate(&self) -> Result<()> {
        let n = self.actions.len();
        crate::error::ensure(
            self.contexts.len() == n * self.d
                && self.rewards.len() == n
                && self.propensities.len() == n,
            "history lengths",
        )
    }

    /// Number of interactions.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether nothing is logged.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Context length d.
    pub fn context_dim(&self) -> usize {
        self.d
    }

    /// Interaction `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<Interaction<'_, F>> {
        Some(Interaction {
            context: self.contexts.get(i * self.d..(i + 1) * self.d)?,
            action: *self.actions.get(i)?,
            reward: *self.rewards.get(i)?,
            propensity: *self.propensities.get(i)?,
        })
    }

    /// All interactions in order.
    pub fn iter(&self) -> impl Iterator<Item = Interaction<'_, F>> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }

    /// The actions, in order.
    pub fn actions(&self) -> &[usize] {
        &self.actions
    }

    /// The rewards, in order.
    pub fn rewards(&self) -> &[F] {
        &self.rewards
    }

    /// The propensities, in order.
    pub fn propensities(&self) -> &[F] {
        &self.propensities
    }

    /// The contexts as a row-major n×d slice.
    pub fn contexts(&self) -> &[F] {
        &self.contexts
    }
}

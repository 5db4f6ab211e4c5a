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

impl<F: Real> History<F> {
    /// Logs built from arrays: one context per row of `contexts` (n×d) and
    /// one action, reward and propensity per row, for a policy with `k`
    /// actions. Everything is checked before anything is built: finite
    /// contexts and rewards, actions below k, propensities in (0, 1].
    ///
    /// # Examples
    /// ```
    /// use ndarray::array;
    /// use refit::history::History;
    /// let logs = History::from_arrays(array![[1.0, 0.5], [1.0, -0.5]].view(), &[0, 1], &[1.0, 0.0], &[0.5, 0.5], 2)?;
    /// assert_eq!(logs.len(), 2);
    /// let bad = History::from_arrays(array![[1.0, 0.5]].view(), &[0], &[1.0], &[1.5], 2);
    /// assert!(bad.unwrap_err().to_string().contains("row 0, column `p`: 1.5"));
    /// # Ok::<(), refit::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::ZeroActions`], [`crate::Error::ZeroContextDim`];
    /// [`crate::Error::Length`] if the lengths disagree;
    /// [`crate::Error::BadLog`] naming the row and column of the first bad value.
    pub fn from_arrays(
        contexts: ndarray::ArrayView2<'_, F>,
        actions: &[usize],
        rewards: &[F],
        propensities: &[F],
        k: usize,
    ) -> Result<Self> {
        let (n, d) = contexts.dim();
        check_shape(k, d)?;
        crate::policy::check_len("actions", actions.len(), n)?;
        crate::policy::check_len("rewards", rewards.len(), n)?;
        crate::policy::check_len("propensities", propensities.len(), n)?;
        let mut out = Self::new(d);
        let mut x = Vec::with_capacity(d);
        for (i, row) in contexts.rows().into_iter().enumerate() {
            x.clear();
            x.extend(row.iter().copied());
            let where_ = || format!("row {i}");
            check_row(&x, actions[i], rewards[i], propensities[i], k, where_)?;
            out.push_unchecked(&x, actions[i], rewards[i], propensities[i]);
        }
        Ok(out)
    }

    /// Checks every logged interaction for a policy with `k` actions, as
    /// [`History::from_arrays`] does.
    ///
    /// # Errors
    /// As [`History::from_arrays`].
    pub fn check(&self, k: usize) -> Result<()> {
        check_shape(k, self.d)?;
        self.validate()?;
        for (i, it) in self.iter().enumerate() {
            check_row(it.context, it.action, it.reward, it.propensity, k, || {
                format!("row {i}")
            })?;
        }
        Ok(())
    }
}

/// K ≥ 1 and d ≥ 1.
pub(crate) fn check_shape(k: usize, d: usize) -> Result<()> {
    if k == 0 {
        return Err(crate::Error::ZeroActions);
    }
    if d == 0 {
        return Err(crate::Error::ZeroContextDim);
    }
    Ok(())
}

/// The checks of one logged row; `location` names it in the error.
pub(crate) fn check_row<F: Real>(
    x: &[F],
    action: usize,
    reward: F,
    propensity: F,
    k: usize,
    location: impl Fn() -> String,
) -> Result<()> {
    let bad = |column: String, value: String, expected: &'static str| crate::Error::BadLog {
        location: location(),
        column,
        value,
        expected,
    };
    if let Some((j, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(bad(format!("x{j}"), v.f64().to_string(), "is not finite"));
    }
    if action >= k {
        return Err(bad(
            "a".into(),
            action.to_string(),
            "is not an action (0-based, below the number of actions)",
        ));
    }
    if !reward.is_finite() {
        return Err(bad("r".into(), reward.f64().to_string(), "is not finite"));
    }
    if !(propensity > F::zero() && propensity <= F::one()) {
        return Err(bad(
            "p".into(),
            propensity.f64().to_string(),
            "is not a propensity in (0, 1]",
        ));
    }
    Ok(())
}

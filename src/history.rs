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
        self.reserve(1)?;
        self.push_unchecked(x, action, reward, propensity);
        Ok(())
    }

    /// Makes room for `rows` more interactions, or [`crate::Error::Allocation`]
    /// (nothing observable changes either way).
    pub(crate) fn reserve(&mut self, rows: usize) -> Result<()> {
        let values = rows.checked_mul(self.d).ok_or(crate::Error::TooLarge {
            quantity: "logged context values",
            value: rows as u128 * self.d as u128,
            limit: usize::MAX,
        })?;
        let grow = |e: std::collections::TryReserveError| {
            let _ = e;
            crate::Error::Allocation {
                quantity: "logged interactions",
                bytes: (rows as u128) * (self.d as u128 + 3) * 8,
            }
        };
        self.contexts.try_reserve(values).map_err(grow)?;
        self.actions.try_reserve(rows).map_err(grow)?;
        self.rewards.try_reserve(rows).map_err(grow)?;
        self.propensities.try_reserve(rows).map_err(grow)?;
        Ok(())
    }

    /// [`History::push`] for a context already checked, with room reserved
    /// (else the process aborts if the allocator refuses).
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
            crate::limits::context_dim(self.d).is_ok()
                && n.checked_mul(self.d) == Some(self.contexts.len())
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
        out.reserve(n)?;
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
    crate::limits::actions(k)?;
    crate::limits::context_dim(d)?;
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

#[cfg(feature = "csv")]
impl<F: Real + std::str::FromStr> History<F> {
    /// Reads logs from a CSV file with a header row naming the columns
    /// `x0, …, x{d−1}, a, r, p` (in any order; d is the number of `x`
    /// columns, which must be x0 … x{d−1}), for a policy with `k` actions:
    /// contexts, the action taken (0-based), its reward and the logging
    /// propensity μ(a | x). Every value is checked as by
    /// [`History::from_arrays`]; the error names the file, the line
    /// (the header is line 1) and the column of the first bad value, and
    /// nothing is returned but the error.
    ///
    /// # Errors
    /// [`crate::Error::File`] if the file cannot be opened or read;
    /// [`crate::Error::BadLog`] for a missing or unexpected column, a value
    /// that does not parse, or one out of range; [`crate::Error::ZeroActions`].
    pub fn read_csv(path: impl AsRef<std::path::Path>, k: usize) -> Result<Self> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let file_err = |e: &dyn std::fmt::Display| crate::Error::File {
            path: shown.clone(),
            message: e.to_string(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| file_err(&e))?;
        let header_problem =
            |column: String, value: String, expected: &'static str| crate::Error::BadLog {
                location: format!("`{shown}` line 1 (header)"),
                column,
                value,
                expected,
            };
        let headers = reader.headers().map_err(|e| file_err(&e))?.clone();
        crate::limits::at_most(
            "log file columns",
            headers.len(),
            crate::limits::MAX_CSV_COLUMNS,
        )?;
        // Column names to positions in one pass (linear in the number of
        // columns); a repeated name is an error.
        let mut by_name = std::collections::HashMap::with_capacity(headers.len());
        for (i, h) in headers.iter().enumerate() {
            if by_name.insert(h, i).is_some() {
                return Err(header_problem(
                    h.to_string(),
                    h.to_string(),
                    "is named twice (each of x0..x{d-1}, a, r, p names one column)",
                ));
            }
        }
        let find = |name: &str| by_name.get(name).copied();
        let mut xcols = Vec::new();
        while let Some(c) = find(&format!("x{}", xcols.len())) {
            xcols.push(c);
        }
        let [ca, cr, cp] = ["a", "r", "p"].map(find);
        let (Some(ca), Some(cr), Some(cp)) = (ca, cr, cp) else {
            let missing = ["a", "r", "p"]
                .into_iter()
                .find(|n| find(n).is_none())
                .unwrap_or("a");
            return Err(header_problem(
                missing.into(),
                "(missing)".into(),
                "is a required column (the header must name x0..x{d-1}, a, r, p)",
            ));
        };
        let mut used = vec![false; headers.len()];
        for &c in xcols.iter().chain([&ca, &cr, &cp]) {
            used[c] = true;
        }
        if let Some(extra) = headers.iter().zip(&used).find(|(_, u)| !**u) {
            return Err(header_problem(
                extra.0.to_string(),
                extra.0.to_string(),
                "is not a column of logs (x0..x{d-1}, a, r, p, with no gap in the x)",
            ));
        }
        check_shape(k, xcols.len())?;
        let mut out = Self::new(xcols.len());
        let mut x = vec![F::zero(); xcols.len()];
        for record in reader.records() {
            let record = record.map_err(|e| file_err(&e))?;
            let line = record.position().map_or(0, |p| p.line());
            let location = || format!("`{shown}` line {line}");
            let cell = |c: usize| record.get(c).unwrap_or("");
            let number = |c: usize| -> Result<F> {
                cell(c).parse::<F>().map_err(|_| crate::Error::BadLog {
                    location: location(),
                    column: headers.get(c).unwrap_or("").to_string(),
                    value: format!("{:?}", cell(c)),
                    expected: "is not a number",
                })
            };
            for (xj, &c) in x.iter_mut().zip(&xcols) {
                *xj = number(c)?;
            }
            let action = cell(ca)
                .parse::<usize>()
                .map_err(|_| crate::Error::BadLog {
                    location: location(),
                    column: "a".into(),
                    value: format!("{:?}", cell(ca)),
                    expected: "is not an action (a whole number from 0)",
                })?;
            let (reward, propensity) = (number(cr)?, number(cp)?);
            check_row(&x, action, reward, propensity, k, location)?;
            out.reserve(1)?;
            out.push_unchecked(&x, action, reward, propensity);
        }
        Ok(out)
    }

    /// Writes the logs as CSV with the header `x0, …, x{d−1}, a, r, p`
    /// (numbers in Rust's shortest round-trip form: reading the file back
    /// gives the same bits).
    ///
    /// # Errors
    /// [`crate::Error::File`] if the file cannot be created or written.
    pub fn write_csv(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        let err = |e: &dyn std::fmt::Display| crate::Error::File {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut w = csv::Writer::from_path(path).map_err(|e| err(&e))?;
        let mut header: Vec<String> = (0..self.d).map(|j| format!("x{j}")).collect();
        header.extend(["a", "r", "p"].map(String::from));
        w.write_record(&header).map_err(|e| err(&e))?;
        let mut row = Vec::with_capacity(self.d + 3);
        for it in self.iter() {
            row.clear();
            row.extend(it.context.iter().map(|v| v.f64().to_string()));
            row.push(it.action.to_string());
            row.push(it.reward.f64().to_string());
            row.push(it.propensity.f64().to_string());
            w.write_record(&row).map_err(|e| err(&e))?;
        }
        w.flush().map_err(|e| err(&e))
    }
}

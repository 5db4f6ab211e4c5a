//! Serde helpers for state that JSON cannot hold as numbers.

/// A padding bias (0 for the K real actions, −inf for the padding) as the
/// pair (K, length): JSON has no −inf.
pub(crate) mod bias {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::real::Real;

    pub(crate) fn serialize<F: Real, S: Serializer>(bias: &[F], s: S) -> Result<S::Ok, S::Error> {
        let k = bias.iter().take_while(|b| b.is_finite()).count();
        (k, bias.len()).serialize(s)
    }

    pub(crate) fn deserialize<'de, F: Real, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<F>, D::Error> {
        let (k, len): (usize, usize) = Deserialize::deserialize(d)?;
        if k > len || len > (1 << 40) {
            return Err(serde::de::Error::custom("bad padding bias shape"));
        }
        Ok((0..len)
            .map(|a| if a < k { F::zero() } else { F::neg_infinity() })
            .collect())
    }
}

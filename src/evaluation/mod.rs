//! Measuring the product end to end, apart from the serving path.

pub mod answers;

//! Measuring the product (answers, understanding, retrieval, the model's
//! speed), apart from the serving path: nothing here runs in `serve`.

pub mod answers;
pub mod bench;
pub mod demand;
pub mod insights_bench;
pub mod retrieval;
pub mod understanding;

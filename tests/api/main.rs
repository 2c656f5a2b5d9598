//! Integration tests: the real server, model, index and database.

mod admin;
mod answers;
mod browser;
mod chat;
mod console;
mod crash;
mod frames;
mod helpers;
mod imports;
mod insights;
mod limits;
mod metrics;
mod operations;
mod orders;
mod origin;
mod privacy;
mod profiles;
mod protocol;
mod sessions;
mod shop_actions;
mod startup;
mod understanding;

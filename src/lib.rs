//! Frontdesk: a self-hosted customer-service chatbot backend.
//!
//! `docs/ARCHITECTURE.md` explains how the modules fit together.

pub mod admin;
pub mod answer;
pub mod api;
pub mod chat;
pub mod cli;
pub mod config;
pub mod console;
pub mod conversation;
pub mod cpu;
pub mod demo_shop;
pub mod evaluation;
pub mod generation;
pub mod http;
pub mod insights;
pub mod knowledge;
pub mod language;
pub mod limits;
pub mod metrics;
pub mod model_files;
pub mod orders;
pub mod origin;
pub mod privacy;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod understanding;
pub mod websocket;

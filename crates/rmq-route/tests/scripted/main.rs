//! Name-server client, route cache and probe tests against a scripted `Invoke`
//! with paused time (reliability.md section 7, group E, route side).

mod cache;
mod detector;
mod fake;
mod name_server;

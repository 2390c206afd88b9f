//! Name-server route data.

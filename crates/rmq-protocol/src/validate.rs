//! Client-side validation.

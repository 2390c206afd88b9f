//! Shared output helpers (JSON schema version, error objects).

//! Helpers for the cross-binary tests in `tests/tests/`.

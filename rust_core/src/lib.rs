//! mixmaker's core.

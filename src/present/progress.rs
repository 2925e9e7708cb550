//! Renderers of progress events (placeholder, filled below).

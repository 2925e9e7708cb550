//! What a command returns: text, structured data and the same result as HTML.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::present::{pre, Rich};

/// A command's result: text for terminals, structured data for notebooks and `--json`, and
/// the same result as HTML for notebooks — rendered by the library on request, so a terminal
/// never pays for charts it does not show.
#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub command: String,
    pub text: String,
    pub data: Value,
    #[serde(skip)]
    pub(super) rich: Html,
    /// The front-end should end the session.
    pub quit: bool,
}

/// Where an output's HTML comes from.
#[derive(Clone)]
pub(super) enum Html {
    /// The text, preformatted.
    Text,
    /// Already rendered (a plotted chart).
    Ready(String),
    /// The report's own rendering.
    Report(Arc<dyn Rich + Send + Sync>),
}

impl std::fmt::Debug for Html {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Html::Text => "Text",
            Html::Ready(_) => "Ready",
            Html::Report(_) => "Report",
        })
    }
}

impl Output {
    pub(super) fn text(command: &str, text: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            text: text.into(),
            data: Value::Null,
            rich: Html::Text,
            quit: false,
        }
    }
    pub(super) fn report<T: Serialize + Rich + Clone + Send + Sync + 'static>(command: &str, r: &T) -> Self {
        Self {
            command: command.into(),
            text: r.to_string(),
            data: serde_json::to_value(r).unwrap_or(Value::Null),
            rich: Html::Report(Arc::new(r.clone())),
            quit: false,
        }
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.text)
    }
}

impl Rich for Output {
    fn html(&self) -> String {
        match &self.rich {
            Html::Text => pre(&self.text),
            Html::Ready(h) => h.clone(),
            Html::Report(r) => r.html(),
        }
    }
}

//! Subscription matching on event-type globs (`push`, `pull_request.*`, `*`).

use wildmatch::WildMatch;

/// A subscription's event filter. An empty list matches nothing, so a
/// subscription must say what it wants; `*` matches every type.
#[derive(Debug, Clone)]
pub struct EventFilter {
    patterns: Vec<WildMatch>,
}

impl EventFilter {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Self {
        Self {
            patterns: patterns
                .iter()
                .map(|p| WildMatch::new(p.as_ref()))
                .collect(),
        }
    }

    pub fn matches(&self, event_type: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(event_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_event_types() {
        let f = EventFilter::new(&["push", "pull_request.*"]);
        assert!(f.matches("push"));
        assert!(f.matches("pull_request.opened"));
        assert!(!f.matches("pull_request"));
        assert!(!f.matches("pushed"));
        assert!(!f.matches("issues.opened"));
    }

    #[test]
    fn star_matches_everything_including_untyped_events() {
        let f = EventFilter::new(&["*"]);
        assert!(f.matches("anything.at.all"));
        assert!(f.matches(""));
    }

    #[test]
    fn empty_filter_matches_nothing() {
        let f = EventFilter::new::<&str>(&[]);
        assert!(!f.matches("push"));
    }
}

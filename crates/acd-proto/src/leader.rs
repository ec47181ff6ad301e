//! Following the distributor leader from a client: a list of endpoints tried
//! with the last known leader first, and the "not leader; try X" hint a
//! standby answers with (FAILED_PRECONDITION plus `x-acd-leader` metadata).

/// Metadata key carrying the leader's URL on a "not leader" refusal.
pub const LEADER_METADATA: &str = "x-acd-leader";

/// Text a standby's refusal starts with, before the leader's URL.
pub const NOT_LEADER_PREFIX: &str = "not leader; try ";

/// The leader's URL from a standby's refusal, if the status is one.
pub fn leader_hint(status: &tonic::Status) -> Option<String> {
    if status.code() != tonic::Code::FailedPrecondition {
        return None;
    }
    let from_meta = status
        .metadata()
        .get(LEADER_METADATA)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    from_meta
        .or_else(|| {
            let msg = status.message();
            let at = msg.find(NOT_LEADER_PREFIX)?;
            Some(msg[at + NOT_LEADER_PREFIX.len()..].trim().to_owned())
        })
        .filter(|url| !url.is_empty())
}

/// The distributors a client knows, in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    urls: Vec<String>,
    /// Index of the last known leader in `urls`.
    leader: usize,
}

impl Endpoints {
    /// From a comma-separated list (`URL[,URL...]`); `None` if it names none.
    pub fn parse(list: &str) -> Option<Endpoints> {
        let urls: Vec<String> = list
            .split(',')
            .map(normalise)
            .filter(|u| !u.is_empty())
            .collect();
        (!urls.is_empty()).then_some(Endpoints { urls, leader: 0 })
    }

    /// Every endpoint, the last known leader first, then the others in the
    /// order given.
    pub fn order(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.urls.len());
        out.push(self.urls[self.leader].clone());
        out.extend(
            self.urls
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != self.leader)
                .map(|(_, u)| u.clone()),
        );
        out
    }

    /// Every endpoint, the last known leader last: after its stream broke,
    /// another one probably leads now (and an unreachable old leader would
    /// cost a connect timeout first).
    pub fn order_leader_last(&self) -> Vec<String> {
        let mut out = self.order();
        out.rotate_left(1);
        out
    }

    /// The last known leader.
    pub fn leader(&self) -> &str {
        &self.urls[self.leader]
    }

    /// `url` answered as the leader (or a standby named it): try it first from
    /// now on. An address not in the list joins it.
    pub fn set_leader(&mut self, url: &str) {
        let url = normalise(url);
        match self.urls.iter().position(|u| *u == url) {
            Some(i) => self.leader = i,
            None => {
                self.urls.push(url);
                self.leader = self.urls.len() - 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.urls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }
}

fn normalise(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_from_metadata_or_message() {
        let mut s = tonic::Status::failed_precondition("not leader; try http://a:1");
        assert_eq!(leader_hint(&s).as_deref(), Some("http://a:1"));
        s.metadata_mut()
            .insert(LEADER_METADATA, "http://b:2".parse().expect("ascii"));
        assert_eq!(leader_hint(&s).as_deref(), Some("http://b:2"));
        assert_eq!(
            leader_hint(&tonic::Status::unavailable("not leader; try x")),
            None
        );
        assert_eq!(
            leader_hint(&tonic::Status::failed_precondition("agent busy")),
            None
        );
        assert_eq!(
            leader_hint(&tonic::Status::failed_precondition("not leader; try ")),
            None
        );
    }

    #[test]
    fn the_known_leader_is_tried_first() {
        assert_eq!(Endpoints::parse(" , "), None);
        let mut e = Endpoints::parse("http://s:1, http://p:2/,http://t:3").expect("urls");
        assert_eq!(e.order(), vec!["http://s:1", "http://p:2", "http://t:3"]);
        e.set_leader("http://p:2");
        assert_eq!(e.order(), vec!["http://p:2", "http://s:1", "http://t:3"]);
        assert_eq!(
            e.order_leader_last(),
            vec!["http://s:1", "http://t:3", "http://p:2"],
            "after its stream broke the old leader is tried last"
        );
        e.set_leader("http://new:4/");
        assert_eq!(e.leader(), "http://new:4");
        assert_eq!(e.len(), 4);
        assert_eq!(e.order()[0], "http://new:4");
    }
}

//! Registration bindings between the edges and the routing core: an edge's
//! `Binding` report becomes `Command::Bind`/`Unbind`; the core's bindings go
//! to every edge, whole on attach and then each change, so any edge reaches
//! a phone registered at another edge or before its own restart.

use acd_proto::v1 as pb;
use acd_routing::{BindingRecord, Command, EdgeId, Event, Extension, Timestamp};

use crate::Distributor;

/// The core command for an edge's report; `attached_as` names the edge when
/// the report does not.
pub fn command(b: pb::Binding, attached_as: &str) -> Command {
    let edge = EdgeId(if b.edge_id.is_empty() {
        attached_as.to_string()
    } else {
        b.edge_id
    });
    let extension = Extension(b.aor);
    if b.expires_at_ms == 0 {
        return Command::Unbind { extension, edge };
    }
    Command::Bind {
        extension,
        binding: BindingRecord {
            contact: b.contact,
            source: b.source,
            edge,
            expires_at: Timestamp(b.expires_at_ms),
        },
    }
}

fn to_wire(extension: &Extension, b: Option<&BindingRecord>) -> pb::Binding {
    match b {
        Some(b) => pb::Binding {
            aor: extension.0.clone(),
            contact: b.contact.clone(),
            expires_at_ms: b.expires_at.0,
            source: b.source.clone(),
            edge_id: b.edge.0.clone(),
        },
        None => pb::Binding {
            aor: extension.0.clone(),
            ..Default::default()
        },
    }
}

/// Every binding the core holds, for an edge that just attached.
pub fn full_update(d: &Distributor) -> pb::BindingUpdate {
    let inner = d.lock();
    pb::BindingUpdate {
        full: true,
        bindings: inner
            .core
            .bindings()
            .map(|(ext, b)| to_wire(ext, Some(b)))
            .collect(),
    }
}

/// The incremental update an event means for the edges, if any.
pub fn update_of(event: &Event) -> Option<pb::BindingUpdate> {
    let Event::BindingChanged { extension, binding } = event else {
        return None;
    };
    Some(pb::BindingUpdate {
        full: false,
        bindings: vec![to_wire(extension, binding.as_ref())],
    })
}

/// The agent's contact and its source as the core knows them now, for
/// `ConnectAgent` (empty strings: no binding; the edge's registrar decides).
pub fn offered_contact(d: &Distributor, extension: &Extension) -> (String, String) {
    d.lock()
        .core
        .binding(extension)
        .map(|b| (b.contact.clone(), b.source.clone()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_become_commands_and_events_updates() {
        let report = pb::Binding {
            aor: "1001".into(),
            contact: "sip:1001@10.0.0.7:5062".into(),
            expires_at_ms: 60_000,
            source: "udp:10.0.0.7:5062".into(),
            edge_id: String::new(),
        };
        let Command::Bind { extension, binding } = command(report.clone(), "edge-a") else {
            panic!("a bind");
        };
        assert_eq!(binding.edge, EdgeId("edge-a".into()));
        let update = update_of(&Event::BindingChanged {
            extension: extension.clone(),
            binding: Some(binding),
        })
        .expect("an update");
        assert!(!update.full);
        assert_eq!(
            update.bindings,
            vec![pb::Binding {
                edge_id: "edge-a".into(),
                ..report.clone()
            }]
        );
        let removal = pb::Binding {
            expires_at_ms: 0,
            edge_id: "edge-b".into(),
            ..report
        };
        assert_eq!(
            command(removal, "edge-a"),
            Command::Unbind {
                extension: extension.clone(),
                edge: EdgeId("edge-b".into())
            }
        );
        let gone = update_of(&Event::BindingChanged {
            extension,
            binding: None,
        })
        .expect("an update");
        assert_eq!(gone.bindings[0].expires_at_ms, 0);
    }
}

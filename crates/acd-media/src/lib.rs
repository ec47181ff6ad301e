//! Sans-IO media core of acd: G.711, WAV prompts, RTP parsing and writing, paced
//! prompt / music-on-hold playout, two-leg relay and minimal SDP offer/answer.
//!
//! Nothing here owns a socket, a timer or a clock; `now: Instant` is an argument and
//! every packet is parsed from `&[u8]` and written into a caller-supplied buffer, so the
//! per-packet path allocates nothing (STYLE.md §1, §2, §7).
//!
//! # Data flow
//!
//! ```text
//!  config load:  WAV bytes ──wav::load_wav──▶ Arc<Prompt> (linear PCM, 8 kHz)
//!
//!  signalling:   INVITE body ──sdp::parse_sdp──▶ SessionDesc ──sdp::negotiate──▶ Codec
//!                                                 └──sdp::build_answer──▶ 200 OK body
//!
//!  playout (per leg, one OutboundStream for the whole call):
//!     shell timer at player.next_deadline()
//!        └─▶ Player::poll_packet(now, &mut stream, &mut buf) ─▶ socket.send(buf)  (drain)
//!
//!  bridge (per datagram):
//!     socket.recv(buf) from leg A ─▶ Relay::forward(A, &mut buf, &mut stream_B)
//!        └─▶ header rewritten in place (SSRC/seq/ts of B's stream) ─▶ send to leg B
//!
//!  DTMF:  caller RTP with pt == telephone_event ─▶ DtmfDetector (once per press)
//!         ─▶ MediaOutput::Digit
//! ```
//!
//! A leg's [`OutboundStream`] outlives each source writing through it (prompt → MOH →
//! agent), so the far end always sees one SSRC with a continuous sequence number and a
//! timestamp that follows the wall clock, and a marker bit at every source switch.

pub mod call;
pub mod codec;
pub mod dtmf;
pub mod g711;
pub mod ids;
pub mod latch;
pub mod player;
pub mod recorder;
pub mod relay;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod stream;
pub mod wav;

pub use call::{
    CallMedia, CallMediaSnapshot, DropReason, LegSnapshot, MediaConfig, MediaOutput, NamedPrompt,
    PlayingSnapshot, RxOutcome, DEFAULT_INACTIVITY,
};
pub use codec::{Codec, SAMPLE_RATE};
pub use dtmf::DtmfDetector;
pub use ids::{PayloadType, SeqNo, Ssrc};
pub use latch::{Latch, LatchConfig, LatchSnapshot, Verdict};
pub use player::{Frame, Player, PlayerPosition, FRAME_DURATION, FRAME_SAMPLES, PACKET_LEN};
pub use recorder::{CallRecording, RecordEnd, Recorder, Recording, MAX_RECORD_MS};
pub use relay::{Leg, Relay, RelayCounters};
pub use rtcp::{is_rtcp, RtcpError};
pub use rtp::{is_rtp, parse_dtmf, DtmfEvent, RtpError, RtpInfo};
pub use sdp::{build_answer, build_offer, negotiate, parse_sdp, Direction, SdpError, SessionDesc};
pub use stream::OutboundStream;
pub use wav::{load_wav, Prompt, WavError};

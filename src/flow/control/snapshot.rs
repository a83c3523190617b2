//! A [`ControlFlow`] written out and read back (see `crate::snapshot`): its identity, TCP
//! state, both directions (stream position, unfinished line, SYN and FIN) and its session.

use std::io;

use super::ControlFlow;
use super::Half;
use super::TcpState;
use crate::config::Config;
use crate::flow::Control;
use crate::flow::FlowId;
use crate::ftp::Session;
use crate::snapshot::Decoder;
use crate::snapshot::Encoder;
use crate::snapshot::SnapshotError;
use crate::stream::Stream;
use crate::stream::lines::Framer;
use crate::wire::SeqNumber;

impl ControlFlow {
    /// Write the whole connection.
    pub fn save(&self, e: &mut Encoder<'_>) -> io::Result<()> {
        e.u64(self.id.0)?;
        e.socket(self.control.client)?;
        e.socket(self.control.server)?;
        e.u8(state_tag(self.state))?;
        e.bool(self.conflict_seen)?;
        for half in &self.halves {
            save_half(e, half)?;
        }
        self.session.save(e)
    }

    /// Read what [`ControlFlow::save`] wrote, with `config`'s bounds.
    pub fn load(d: &mut Decoder<'_>, config: &Config) -> Result<Self, SnapshotError> {
        let id = FlowId(d.u64()?);
        let control = Control {
            client: d.socket()?,
            server: d.socket()?,
        };
        if control.client.is_ipv4() != control.server.is_ipv4() {
            return Err(SnapshotError::Invalid("control connection"));
        }
        let state = state_of(d.u8()?)?;
        let conflict_seen = d.bool("conflict flag")?;
        let halves = [load_half(d, config)?, load_half(d, config)?];
        let session = Session::load(d, config.session, config.max_line)?;
        Ok(Self {
            id,
            control,
            state,
            halves,
            session,
            conflict_seen,
        })
    }
}

fn save_half(e: &mut Encoder<'_>, half: &Half) -> io::Result<()> {
    e.bool(half.stream.is_some())?;
    if let Some(stream) = &half.stream {
        stream.save(e)?;
    }
    half.framer.save(e)?;
    e.opt_u64(half.syn.map(|s| u64::from(s.0)))?;
    e.bool(half.fin)
}

fn load_half(d: &mut Decoder<'_>, config: &Config) -> Result<Half, SnapshotError> {
    let stream = if d.bool("stream flag")? {
        Some(Stream::load(d, config.stream)?)
    } else {
        None
    };
    let framer = Framer::load(d, config.max_line)?;
    let syn = match d.opt_u64("SYN")? {
        Some(seq) => Some(SeqNumber(
            u32::try_from(seq).map_err(|_| SnapshotError::Invalid("SYN"))?,
        )),
        None => None,
    };
    let fin = d.bool("FIN flag")?;
    Ok(Half {
        stream,
        framer,
        syn,
        fin,
    })
}

/// The tag of a TCP state in a snapshot.
pub(crate) fn state_tag(state: TcpState) -> u8 {
    match state {
        TcpState::SynSent => 0,
        TcpState::Established => 1,
        TcpState::Closing => 2,
        TcpState::Closed => 3,
    }
}

/// The TCP state a snapshot's tag names.
pub(crate) fn state_of(tag: u8) -> Result<TcpState, SnapshotError> {
    Ok(match tag {
        0 => TcpState::SynSent,
        1 => TcpState::Established,
        2 => TcpState::Closing,
        3 => TcpState::Closed,
        _ => return Err(SnapshotError::Invalid("TCP state")),
    })
}

//! Reading what the kernel sends: checked views over one received datagram.
//!
//! Every length comes from the kernel and is checked before use (netlink(7): `nlmsg_len`
//! covers the 16-byte header; `nla_len` covers the 4-byte attribute header; both are
//! followed by padding to 4 bytes, which the last item in a buffer may omit). A bad length
//! ends the iteration with a [`Malformed`] error; nothing here panics or copies.
//!
//! `NLMSG_ERROR` (include/uapi/linux/netlink.h `struct nlmsgerr`): a host-order `int`
//! error (0 = ACK, negative = errno), then the request's `nlmsghdr`, then its payload
//! unless `NLM_F_CAPPED`, then extended-ACK attributes if `NLM_F_ACK_TLVS`.

use crate::io::netlink::KernelError;
use crate::io::netlink::Malformed;
use crate::io::netlink::consts::NLA_F_NESTED;
use crate::io::netlink::consts::NLA_HDRLEN;
use crate::io::netlink::consts::NLA_TYPE_MASK;
use crate::io::netlink::consts::NLM_F_ACK_TLVS;
use crate::io::netlink::consts::NLM_F_CAPPED;
use crate::io::netlink::consts::NLMSG_ERROR;
use crate::io::netlink::consts::NLMSG_HDRLEN;
use crate::io::netlink::consts::NLMSGERR_ATTR_MSG;

/// One netlink message (header fields and the payload after the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`: for answers, the request's.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub port_id: u32,
    /// Everything after the 16-byte header, without trailing padding.
    pub payload: &'a [u8],
}

/// The `struct nfgenmsg` that starts every netfilter message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NfGen {
    /// `nfgen_family`.
    pub family: u8,
    /// `version`.
    pub version: u8,
    /// `res_id`, converted from big-endian (the queue number for nfqueue).
    pub res_id: u16,
}

/// One attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The type without `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER`.
    pub kind: u16,
    /// Whether `NLA_F_NESTED` was set.
    pub nested: bool,
    /// The payload, without padding.
    pub payload: &'a [u8],
}

/// Iterator over the messages in a buffer; stops after the first malformed one.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

/// Iterator over the attributes in a buffer; stops after the first malformed one.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

/// The messages in `buf`.
pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { rest: buf }
}

/// The attributes in `buf`.
pub fn attributes(buf: &[u8]) -> Attributes<'_> {
    Attributes { rest: buf }
}

/// The first attribute of type `kind` in `buf`, if any.
pub fn find(buf: &[u8], kind: u16) -> Result<Option<Attribute<'_>>, Malformed> {
    for attribute in attributes(buf) {
        let attribute = attribute?;
        if attribute.kind == kind {
            return Ok(Some(attribute));
        }
    }
    Ok(None)
}

impl<'a> Message<'a> {
    /// Split a netfilter message into its `nfgenmsg` and its attribute bytes.
    pub fn netfilter(&self) -> Result<(NfGen, &'a [u8]), Malformed> {
        let (header, attributes) = split(self.payload, 4, "nfgenmsg")?;
        let nfgen = NfGen {
            family: header[0],
            version: header[1],
            res_id: u16::from_be_bytes([header[2], header[3]]),
        };
        Ok((nfgen, attributes))
    }

    /// For an `NLMSG_ERROR`: `Some(Ok(()))` for an ACK, `Some(Err(_))` for a refusal.
    /// `None` for any other message.
    pub fn outcome(&self) -> Result<Option<Result<(), KernelError>>, Malformed> {
        if self.kind != NLMSG_ERROR {
            return Ok(None);
        }
        let (error, rest) = split(self.payload, 4, "nlmsgerr")?;
        let error = i32::from_ne_bytes([error[0], error[1], error[2], error[3]]);
        if error == 0 {
            return Ok(Some(Ok(())));
        }
        let errno = error.checked_neg().filter(|e| *e > 0);
        let errno = errno.ok_or(Malformed("nlmsgerr error"))?;
        let message = self.extended_message(rest)?;
        Ok(Some(Err(KernelError { errno, message })))
    }

    /// The `NLMSGERR_ATTR_MSG` text after the echoed request, if any.
    fn extended_message(&self, echoed: &[u8]) -> Result<Option<String>, Malformed> {
        if self.flags & NLM_F_ACK_TLVS == 0 {
            return Ok(None);
        }
        let (header, _) = split(echoed, NLMSG_HDRLEN, "nlmsgerr request header")?;
        let request_len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
        let skip = if self.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            usize::try_from(request_len).map_err(|_| Malformed("nlmsgerr request length"))?
        };
        let skip = skip.next_multiple_of(4).min(echoed.len());
        let Some(text) = find(&echoed[skip..], NLMSGERR_ATTR_MSG)? else {
            return Ok(None);
        };
        let text = text.payload.split(|b| *b == 0).next().unwrap_or_default();
        Ok(Some(String::from_utf8_lossy(text).into_owned()))
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.take();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

impl<'a> Messages<'a> {
    /// Cut the first message off `rest`.
    fn take(&mut self) -> Result<Message<'a>, Malformed> {
        let (header, _) = split(self.rest, NLMSG_HDRLEN, "message header")?;
        let length = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
        let length = usize::try_from(length).map_err(|_| Malformed("message length"))?;
        if length < NLMSG_HDRLEN || length > self.rest.len() {
            return Err(Malformed("message length"));
        }
        let message = Message {
            kind: u16::from_ne_bytes([header[4], header[5]]),
            flags: u16::from_ne_bytes([header[6], header[7]]),
            seq: u32::from_ne_bytes([header[8], header[9], header[10], header[11]]),
            port_id: u32::from_ne_bytes([header[12], header[13], header[14], header[15]]),
            payload: &self.rest[NLMSG_HDRLEN..length],
        };
        let next = length.next_multiple_of(4).min(self.rest.len());
        self.rest = &self.rest[next..];
        Ok(message)
    }
}

impl<'a> Attribute<'a> {
    /// The attributes nested inside this one.
    pub fn children(&self) -> Attributes<'a> {
        attributes(self.payload)
    }

    /// A one-byte value.
    pub fn u8(&self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.exact::<1>(what)?[0])
    }

    /// A big-endian 16-bit value.
    pub fn be16(&self, what: &'static str) -> Result<u16, Malformed> {
        self.exact(what).map(u16::from_be_bytes)
    }

    /// A big-endian 32-bit value.
    pub fn be32(&self, what: &'static str) -> Result<u32, Malformed> {
        self.exact(what).map(u32::from_be_bytes)
    }

    /// A big-endian 64-bit value.
    pub fn be64(&self, what: &'static str) -> Result<u64, Malformed> {
        self.exact(what).map(u64::from_be_bytes)
    }

    /// A string, up to its first NUL (lossy UTF-8).
    pub fn string(&self) -> String {
        let text = self.payload.split(|b| *b == 0).next().unwrap_or_default();
        String::from_utf8_lossy(text).into_owned()
    }

    /// The payload as exactly `N` bytes.
    fn exact<const N: usize>(&self, what: &'static str) -> Result<[u8; N], Malformed> {
        self.payload.try_into().map_err(|_| Malformed(what))
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Attribute<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = self.take();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

impl<'a> Attributes<'a> {
    /// Cut the first attribute off `rest`.
    fn take(&mut self) -> Result<Attribute<'a>, Malformed> {
        let (header, _) = split(self.rest, NLA_HDRLEN, "attribute header")?;
        let length = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        if length < NLA_HDRLEN || length > self.rest.len() {
            return Err(Malformed("attribute length"));
        }
        let kind = u16::from_ne_bytes([header[2], header[3]]);
        let attribute = Attribute {
            kind: kind & NLA_TYPE_MASK,
            nested: kind & NLA_F_NESTED != 0,
            payload: &self.rest[NLA_HDRLEN..length],
        };
        let next = length.next_multiple_of(4).min(self.rest.len());
        self.rest = &self.rest[next..];
        Ok(attribute)
    }
}

/// `buf` split after `at` bytes, or `Malformed(what)` if it is shorter.
fn split<'a>(
    buf: &'a [u8],
    at: usize,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), Malformed> {
    buf.split_at_checked(at).ok_or(Malformed(what))
}

#[cfg(test)]
mod tests;

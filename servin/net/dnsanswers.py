"""What the embedded DNS server answers: the names a sandbox's container may resolve,
and for any other name what the host's resolvers say. dnspython does the wire format."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.reversename
import structlog

if TYPE_CHECKING:
    from servin.net.dns import Names

log = structlog.get_logger("servin.net")

TTL = 600  # what Docker's resolver answers with
UPSTREAM_TIMEOUT = 4.0


class Answers:
    def __init__(self, names: Names, upstreams: list[tuple[str, int]]) -> None:
        self.names = names
        self.upstreams = upstreams

    async def answer(self, wire: bytes, tcp: bool) -> bytes | None:
        """The reply to one query in wire format; None for what is no DNS query."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if len(query.question) != 1:
            return _reply(query, dns.rcode.FORMERR).to_wire()
        question = query.question[0]
        local = self._local(query, question)
        if local is not None:
            return local.to_wire()
        return await self._forward(query, tcp)

    def _local(self, query: dns.message.Message, question) -> dns.message.Message | None:
        name = question.name.to_text(omit_final_dot=True).lower()
        if question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            addresses = self.names.lookup(name)
            if addresses is None:
                return None
            version = 4 if question.rdtype == dns.rdatatype.A else 6
            reply = _reply(query, dns.rcode.NOERROR)
            texts = [str(a) for a in addresses if a.version == version]
            if texts:
                reply.answer.append(dns.rrset.from_text_list(
                    question.name, TTL, dns.rdataclass.IN, question.rdtype, texts))
            return reply
        if question.rdtype == dns.rdatatype.PTR:
            try:
                address = ipaddress.ip_address(dns.reversename.to_address(question.name))
            except (dns.exception.DNSException, ValueError):
                return None
            target = self.names.reverse(address)
            if target is None:
                return None
            reply = _reply(query, dns.rcode.NOERROR)
            reply.answer.append(dns.rrset.from_text(question.name, TTL, dns.rdataclass.IN,
                                                    dns.rdatatype.PTR, target + "."))
            return reply
        return None

    async def _forward(self, query: dns.message.Message, tcp: bool) -> bytes:
        for host, port in self.upstreams:
            try:
                if tcp:
                    response = await dns.asyncquery.tcp(query, host, UPSTREAM_TIMEOUT, port)
                else:
                    response = await dns.asyncquery.udp(query, host, UPSTREAM_TIMEOUT, port,
                                                        raise_on_truncation=False)
                return response.to_wire()
            except (dns.exception.DNSException, OSError) as exc:
                log.debug("dns_upstream_failed", upstream=host, error=str(exc))
        return _reply(query, dns.rcode.SERVFAIL).to_wire()


def _reply(query: dns.message.Message, rcode: int) -> dns.message.Message:
    reply = dns.message.make_response(query, recursion_available=True)
    reply.set_rcode(rcode)
    return reply

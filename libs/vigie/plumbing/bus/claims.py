"""Exclusive ownership of a camera's work by one process (DESIGN.md: "a camera is owned by exactly
one replica … a fenced claim on an existing primitive").

A claim is a key of the JetStream KV bucket ``CLAIMS`` (``<service>.<commune>.<camera>``), created
only if absent and renewed by compare-and-set on its revision. The bucket's TTL expires the key of
a holder that died or froze; a holder whose renewal fails has lost the camera (someone else may have
it now) and stops at once. Two consumers never process one camera's frames together: a second one
finds the camera taken and waits.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from vigie.plumbing.bus.consumer import TRANSIENT_NATS_ERRORS
from vigie.plumbing.bus.subjects import BusNames
from vigie.plumbing.log import get_logger

log = get_logger(__name__)
CLAIM_REFUSED: tuple[type[BaseException], ...] = (
    nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError,
    nats.js.errors.KeyDeletedError)
RELEASE_SKIPPED: tuple[type[BaseException], ...] = (nats.errors.Error, *TRANSIENT_NATS_ERRORS)
# Binding before `vigie init` made the bucket, or while NATS is away: wait and try again.
BIND_RETRY: tuple[type[BaseException], ...] = (*TRANSIENT_NATS_ERRORS, nats.js.errors.NotFoundError)


def replica_of(holder: str) -> str:
    """The replica's name in a holder id (`<replica>:<suffix of this start>`)."""
    return holder.rsplit(":", 1)[0]


def owner_id(service: str) -> str:
    """Who holds a claim: readable in `nats kv get`, unique per process start."""
    return f"{service}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Claim:
    key: str
    revision: int
    renewed_at: float  # time.monotonic()


class Claims:
    """One process's claims on one bucket."""

    def __init__(self, kv: KeyValue, *, service: str, owner: str, ttl_s: float) -> None:
        self._kv, self._service, self.owner, self.ttl_s = kv, service, owner, ttl_s

    @classmethod
    async def bind(cls, js: JetStreamContext, names: BusNames, *, service: str,
                   owner: str | None = None) -> Claims:
        """Bind to the bucket `vigie init` made; its TTL (VIGIE_BUS_CLAIM_TTL_S) sets the pace.
        ``owner`` names the holder (a replica's name); a random suffix makes each start unique."""
        kv = await js.key_value(names.claims_bucket)
        ttl_s = (await kv.status()).ttl
        if not ttl_s:
            raise ValueError(f"the claims bucket {names.claims_bucket} has no TTL: run vigie init")
        holder = f"{owner}:{uuid.uuid4().hex[:6]}" if owner else owner_id(service)
        return cls(kv, service=service, owner=holder, ttl_s=ttl_s)

    @property
    def renew_every_s(self) -> float:
        return self.ttl_s / 3

    def key(self, commune: str, camera: str) -> str:
        return f"{self._service}.{commune}.{camera}"

    async def acquire(self, commune: str, camera: str) -> Claim | None:
        """The claim, or None while another process holds it (or NATS is away)."""
        key = self.key(commune, camera)
        try:
            revision = await self._kv.create(key, self.owner.encode())
        except CLAIM_REFUSED:
            return None
        except TRANSIENT_NATS_ERRORS as exc:
            log.warning("claim_unavailable", key=key, error=type(exc).__name__)
            return None
        return Claim(key, revision, time.monotonic())

    async def holder(self, commune: str, camera: str) -> tuple[str, int] | None:
        """Who holds the camera's claim now and at which revision; None when nobody does (or
        NATS is away)."""
        try:
            entry = await self._kv.get(self.key(commune, camera))
        except CLAIM_REFUSED:
            return None
        except TRANSIENT_NATS_ERRORS as exc:
            log.warning("claim_unavailable", key=self.key(commune, camera), error=type(exc).__name__)
            return None
        if not entry.value or entry.revision is None:
            return None
        return entry.value.decode(errors="replace"), entry.revision

    async def take_over(self, commune: str, camera: str, revision: int) -> Claim | None:
        """The claim of a holder known dead (`vigie.cameras.replicas`), replaced by
        compare-and-set on the revision it was read at: of several replicas that saw the death,
        one gets it; None for the others, or if the holder renewed meanwhile."""
        key = self.key(commune, camera)
        try:
            new_revision = await self._kv.update(key, self.owner.encode(), last=revision)
        except CLAIM_REFUSED:
            return None
        except TRANSIENT_NATS_ERRORS as exc:
            log.warning("claim_unavailable", key=key, error=type(exc).__name__)
            return None
        return Claim(key, new_revision, time.monotonic())

    async def renew(self, claim: Claim) -> bool:
        """Extend the claim; False when it was lost (expired and taken, or NATS unreachable
        for longer than it could have lasted): the holder must stop working on the camera."""
        try:
            claim.revision = await self._kv.update(claim.key, self.owner.encode(),
                                                   last=claim.revision)
        except CLAIM_REFUSED:
            return False
        except TRANSIENT_NATS_ERRORS as exc:
            # Not renewed, not lost yet: valid until its TTL from the last renewal.
            log.warning("claim_renew_failed", key=claim.key, error=type(exc).__name__)
            return time.monotonic() - claim.renewed_at < self.ttl_s * 0.8
        claim.renewed_at = time.monotonic()
        return True

    async def still_held(self, claim: Claim) -> bool:
        """Renew when due; called before each piece of work, so that a process frozen past the
        TTL (SIGSTOP, a stalled VM) notices it lost the camera before doing anything more."""
        if time.monotonic() - claim.renewed_at < self.renew_every_s:
            return True
        return await self.renew(claim)

    async def release(self, claim: Claim) -> None:
        try:
            await self._kv.delete(claim.key, last=claim.revision)
        except RELEASE_SKIPPED as exc:
            log.info("claim_release_skipped", key=claim.key, error=type(exc).__name__)

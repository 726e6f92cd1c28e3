"""What VIDEO holds, and what the recorder must store of it (DESIGN.md invariant 2): the oracle
the end-to-end tests, the benches and `make compose-check` count stored frames against, written
apart from the recorder's code so that one does not check itself."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

# One VIDEO frame's headers: (capture ns, keyframe, owner epoch, session, seq).
VideoHeader = tuple[int, bool, int, str, int]
RECORDER_GAP_NS = 2_000_000_000  # RecorderSettings.gap_s: a capture gap that closes a segment


def video_frames_to_store(frames: list[VideoHeader]) -> list[int]:
    """What the recorder must store of one camera's VIDEO frames, (capture ns, keyframe, owner
    epoch, session, seq) in stream order, as capture times in µs: all but a stale owner's (an
    epoch below one already seen), a capture time already stored (a new masking owner
    re-encoding frames its predecessor published and the recorder stored), and frames that
    cannot be decoded (after a capture gap, a hole in the producer's sequence, a new session or a
    frame not stored, until the next keyframe). A picture seen but not stored (undecodable) does
    not count as stored: a new owner's re-encoded version of it is. DESIGN.md invariant 2, issue
    34, written apart from the recorder's code."""
    kept: list[int] = []
    top_epoch, last_kept, decodable = 0, -1, False
    session, last_seq = "", -1
    for capture_ns, keyframe, epoch, frame_session, seq in frames:
        if epoch < top_epoch:
            continue
        top_epoch = epoch
        if frame_session == session and seq <= last_seq:
            continue  # the same message twice
        if frame_session != session or seq != last_seq + 1:
            decodable = False  # frames lost, or another producer: its references are unseen
        session, last_seq = frame_session, seq
        if not decodable and not keyframe:
            continue  # references a picture that never came, or was not stored
        if capture_ns <= last_kept:
            decodable = False  # not stored again: what references it cannot be either
            continue
        if last_kept >= 0 and capture_ns - last_kept > RECORDER_GAP_NS:
            decodable = False
        decodable = decodable or keyframe
        if decodable:
            last_kept = capture_ns
            kept.append(capture_ns // 1000)
    return kept


async def video_headers(nc: Any, names: Any) -> dict[str, list[VideoHeader]]:
    """Every frame in VIDEO up to now, per camera, in stream order: (capture ns, keyframe, owner
    epoch, session, seq), read headers-only (the payloads would be gigabytes)."""
    import nats.errors
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    from vigie.plumbing.bus.subjects import parse_camera_subject

    js = nc.jetstream()
    until = (await js.stream_info(names.video_stream)).state.last_seq  # cameras go on
    sub = await js.pull_subscribe(names.all_video, stream=names.video_stream, config=ConsumerConfig(
        headers_only=True, deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT,
        max_ack_pending=-1))
    frames: dict[str, list[VideoHeader]] = defaultdict(list)
    seen = 0
    while seen < until:
        try:
            msgs = await sub.fetch(5000, timeout=5)
        except nats.errors.TimeoutError:
            break
        for m in msgs:
            seen = m.metadata.sequence.stream
            if seen > until:
                break
            h = m.headers or {}
            commune, camera = parse_camera_subject(m.subject)
            frames[f"{commune}/{camera}"].append((int(h["Vigie-Capture-Time-Ns"]),
                                                  h.get("Vigie-Keyframe") == "1",
                                                  int(h.get("Vigie-Owner-Epoch", "0")),
                                                  h.get("Vigie-Session", ""),
                                                  int(h.get("Vigie-Seq", "0"))))
    await sub.unsubscribe()
    return frames

"""The per-camera masking pipeline: RAW access units in, masked H.264 access units out.

Pure of the bus and the database, so that it can be driven frame by frame in tests. It fails
closed: whenever the camera is not active, its masks are unknown, or a step fails, it returns
nothing, and it resumes only at a source keyframe under valid masks (DESIGN.md invariant 1).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from fractions import Fraction

import av
import cv2
from vigie.media.bitstream import parameter_sets
from vigie.media.encoder import EncoderOptions, new_encoder
from vigie.media.masks import MaskDocument, MaskGeometry, yuv_planes
from vigie.media.pictures import encodable, maskable
from vigie.plumbing.bus.events import MASKING_STARTING
from vigie.plumbing.bus.frames import Frame

# R35 (arrêté of 3 August 2007, art. 2): floors of stored resolution and frame rate.
NORMS = {False: (352, 288, 6.0), True: (704, 576, 12.0)}  # narrow_field → (w, h, fps)


STARTING = MASKING_STARTING
# Blocks that a new policy lifts (the others wait for the frames to say they are over).
POLICY_BLOCKS = frozenset({"commissioning", "unknown_camera", "masks_unavailable",
                           "unauthorised"})
SOURCE_CHANGED = "source_changed"


@dataclass(frozen=True)
class CameraPolicy:
    """What the database says of a camera, as masking needs it."""

    state: str  # commissioning | active | disabled
    document: MaskDocument | None  # latest approved, None when there is none (or it is invalid)
    encoder: EncoderOptions = field(default_factory=EncoderOptions)
    narrow_field: bool = False
    problem: str = ""  # why document is None, for the event
    # The picture size the document was approved on (None: approved before sizes were kept).
    picture_size: tuple[int, int] | None = None
    # Why the camera may not film now (R3: no valid prefectoral authorisation); "" when it may.
    unauthorised: str = ""

    @property
    def may_film(self) -> bool:
        return self.state == "active" and not self.unauthorised and self.document is not None


@dataclass
class Blocked:
    reason: str
    detail: str = ""


@dataclass
class _Meta:
    capture_time_ns: int
    source_keyframe: bool


class CameraPipeline:
    """Decode → mask in place on the YUV planes → encode, or pass through an unmasked H.264 camera.

    ``process`` returns the VIDEO frames to publish for one RAW frame (zero, one, or a few when the
    encoder catches up). ``blocked`` says why nothing is published, ``None`` when video flows.
    """

    def __init__(self, commune: str, camera: str) -> None:
        self.commune, self.camera = commune, camera
        self.policy: CameraPolicy | None = None
        # "starting" is not a failure: no event until video flows or a real cause appears.
        self.blocked: Blocked | None = Blocked(STARTING, "waiting for the first keyframe")
        self.session = uuid.uuid4().hex[:12]
        self.seq = 0
        self._decoder: av.CodecContext | None = None
        self._decoder_codec: str | None = None
        self._encoder: av.CodecContext | None = None
        self._encoder_key: tuple[int, int, EncoderOptions] | None = None
        self._geometry: MaskGeometry | None = None
        self._force_key = True
        self._meta: dict[int, _Meta] = {}
        self._time_base = Fraction(1, 90000)
        self._active: MaskDocument | None = None  # the document the last output was made with
        self.last_raw_keyframe: Frame | None = None
        # Taking over mid-stream: pictures up to this pts were published by the predecessor
        # (``resume_after``); None once past them.
        self._skip_through_pts: int | None = None
        self._pending: CameraPolicy | None = None
        self._pending_lock = threading.Lock()

    # --- policy -----------------------------------------------------------------------------

    def set_policy(self, policy: CameraPolicy) -> None:
        """Hand a new policy over; it applies from the next frame (``process`` runs in a worker
        thread: applying it there, between frames, means a frame never mixes two policies)."""
        with self._pending_lock:
            self._pending = policy

    @property
    def latest_policy(self) -> CameraPolicy | None:
        return self._pending or self.policy

    def apply_pending(self) -> None:
        """Apply a handed-over policy now; call only between frames (never during ``process``)."""
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._apply_policy(pending)

    def _apply_policy(self, policy: CameraPolicy) -> None:
        """A new mask version applies from the next frame, which the encoder makes a keyframe."""
        previous = self.policy
        self.policy = policy
        if policy.state != "active":
            self._block(policy.state if policy.state == "commissioning" else "unknown_camera",
                        f"camera is {policy.state}")
        elif policy.unauthorised:
            self._block("unauthorised", policy.unauthorised)
        elif policy.document is None:
            self._block("masks_unavailable", policy.problem or "no approved mask document")
        else:
            if self.blocked is not None and self.blocked.reason in POLICY_BLOCKS:
                # Approved masks now: waiting for a keyframe under them is starting, not a
                # failure (the camera read « masquage en échec » until a restart, issue 18).
                self._block(STARTING, f"waiting for a keyframe under version "
                            f"{policy.document.version}")
            if previous is None or previous.document is None or \
                    previous.document.version != policy.document.version or \
                    previous.document != policy.document:
                self._geometry = None
                self._force_key = True

    def fail(self, reason: str, detail: str) -> None:
        """Blocked for a cause outside the frames (it is reported, and nothing is published)."""
        self._block(reason, detail)

    def restart(self, why: str) -> None:
        """Start again from the next keyframe, as a camera that has not begun (no failure)."""
        self._block(STARTING, why)

    def _block(self, reason: str, detail: str = "") -> None:
        self.blocked = Blocked(reason, detail)
        self._reset_codecs()

    def reset_decoder(self) -> None:
        """Frames were lost before the next one: the decoder's reference pictures are not the
        camera's any more. A new decoder starts at the next keyframe; the encoder goes on."""
        self._decoder = None
        self._meta.clear()

    def resume_after(self, first: Frame, published_pts: int) -> bool:
        """Take a camera over mid-stream (its owner killed, frozen, handing over): the source
        frames from ``first`` (a keyframe) are then fed to ``process`` again, and the pictures
        up to ``published_pts`` — published by the predecessor — are decoded, never published
        again; the first picture after them goes out as this encoder's first keyframe. In
        presentation order, so that B-frames are right too. False (nothing changed: the next
        source keyframe starts it) when the policy does not let the camera film or the camera is
        passed through (its frames would go to VIDEO again, not decoded)."""
        self.apply_pending()
        policy = self.policy
        if not first.keyframe or policy is None or not policy.may_film or \
                policy.document is None or _passes_through(first, policy.document):
            return False
        self._reset_codecs()
        self.blocked = None  # starting at ``first``, a keyframe, under the policy now loaded
        self._skip_through_pts = published_pts
        return True

    def _reset_codecs(self) -> None:
        self._skip_through_pts = None
        self._active = None
        self._decoder = None
        self._encoder = None
        self._meta.clear()
        self._force_key = True

    # --- frames -----------------------------------------------------------------------------

    def process(self, raw: Frame) -> list[Frame]:
        self.apply_pending()
        if raw.keyframe:
            self.last_raw_keyframe = raw  # kept in memory only, for the commissioning snapshot
        policy = self.policy
        if policy is None or not policy.may_film or policy.document is None:
            return []
        if policy.picture_size and (raw.width, raw.height) != policy.picture_size:
            # Another picture than the one the masks were drawn on (a new source, a new sensor
            # mode): what is private in view is unknown. Nothing passes (DESIGN.md life cycle).
            if self.blocked is None or self.blocked.reason != SOURCE_CHANGED:
                width, height = policy.picture_size
                self._block(SOURCE_CHANGED, f"the picture is {raw.width}x{raw.height}; the masks "
                            f"were approved on {width}x{height}")
            return []
        if self.blocked is not None:
            if not raw.keyframe:
                return []  # resume only at a keyframe, under the valid masks now loaded
            self.blocked = None
            self._reset_codecs()
        document = self._document_for(raw, policy.document)
        if document is None:
            return []  # from passthrough to masking: nothing until a source keyframe
        if _passes_through(raw, document):
            return [self._passthrough(raw, document.version)]
        try:
            pictures = self._decode(raw)
        except av.error.FFmpegError as exc:
            self._block("decode", f"{type(exc).__name__}: {exc.strerror}")
            return []
        out: list[Frame] = []
        for decoded in pictures:
            if self._skip_through_pts is not None:
                if decoded.pts is not None and decoded.pts <= self._skip_through_pts:
                    self._meta.pop(decoded.pts, None)
                    continue  # published by the predecessor
                self._skip_through_pts = None
            try:
                picture = maskable(decoded)  # full range, 10 bits, 4:2:2 → yuv420p
                self._mask(picture, document)
            except (ValueError, cv2.error, av.error.FFmpegError) as exc:
                self._block("mask", str(exc))
                return []
            try:
                out.extend(self._encode(encodable(picture), policy.encoder, document.version,
                                        raw))
            except av.error.FFmpegError as exc:
                self._block("encode", f"{type(exc).__name__}: {exc.strerror}")
                return []
        return out

    def _document_for(self, raw: Frame, target: MaskDocument) -> MaskDocument | None:
        """The document this frame is processed with. A change into or out of passthrough
        happens at a source keyframe only: passed-through P-frames need the camera's own
        reference pictures, and a version's first frame must be a keyframe (its segment is named
        for it). Meanwhile masking carries on under the previous version; a camera passed
        through waits for the keyframe with nothing published (fail closed)."""
        active = self._active
        if active is None or active == target or raw.keyframe or \
                not (_passes_through(raw, target) or _passes_through(raw, active)):
            self._active = target
            return target
        return None if _passes_through(raw, active) else active

    def _passthrough(self, raw: Frame, version: int) -> Frame:
        frame = raw.model_copy(update={"mask_version": version, "session": self.session,
                                       "seq": self.seq})
        self.seq += 1
        return frame

    def _decode(self, raw: Frame) -> list[av.VideoFrame]:
        if self._decoder is None or self._decoder_codec != raw.codec:
            if not raw.keyframe:
                return []
            self._decoder = av.CodecContext.create(raw.codec, "r")
            if raw.parameter_sets:
                self._decoder.extradata = raw.parameter_sets
            self._decoder_codec = raw.codec
        self._time_base = raw.time_base
        self._meta[raw.pts] = _Meta(raw.capture_time_ns, raw.keyframe)
        if len(self._meta) > 256:  # frames the decoder never returned (corrupt input)
            for pts in sorted(self._meta)[:-128]:
                del self._meta[pts]
        packet = av.Packet(raw.data)
        packet.pts, packet.dts, packet.time_base = raw.pts, raw.dts, raw.time_base
        return list(self._decoder.decode(packet))  # type: ignore[attr-defined]

    def _mask(self, picture: av.VideoFrame, document: MaskDocument) -> None:
        size = (picture.width, picture.height)
        if self._geometry is None or (self._geometry.width, self._geometry.height) != size or \
                self._geometry.version != document.version:
            # A new size or version: rebuild before any frame of it is published.
            self._geometry = MaskGeometry(document, *size)
            self._force_key = True
        self._geometry.apply(*yuv_planes(picture))

    def _encode(self, picture: av.VideoFrame, options: EncoderOptions, version: int,
                raw: Frame) -> list[Frame]:
        key = (picture.width, picture.height, options)
        if self._encoder is None or self._encoder_key != key:
            self._encoder = new_encoder(options, width=picture.width, height=picture.height,
                                        time_base=self._time_base, fps=None)
            self._encoder_key = key
            self._force_key = True
        pts = picture.pts if picture.pts is not None else raw.pts
        meta = self._meta.get(pts)
        source_key = bool(meta and meta.source_keyframe)
        picture.pts = pts
        picture.pict_type = av.video.frame.PictureType.I if (self._force_key or source_key and
                                                             options.gop is None) else \
            av.video.frame.PictureType.NONE
        self._force_key = False
        out = []
        for packet in self._encoder.encode(picture):  # type: ignore[attr-defined]
            data = bytes(packet)
            pmeta = self._meta.pop(packet.pts, None) if packet.pts is not None else None
            frame = Frame.model_construct(
                schema_version=1, commune=self.commune, camera=self.camera, codec="h264",
                width=picture.width, height=picture.height, pts=packet.pts,
                dts=packet.dts, time_base=self._time_base, keyframe=packet.is_keyframe,
                capture_time_ns=pmeta.capture_time_ns if pmeta else raw.capture_time_ns,
                session=self.session, seq=self.seq, mask_version=version,
                parameter_sets=parameter_sets(data) if packet.is_keyframe else None, data=data)
            self.seq += 1
            out.append(frame)
        return out


def _passes_through(raw: Frame, document: MaskDocument) -> bool:
    """An H.264 camera approved with no private space in view is published as it comes."""
    return raw.codec == "h264" and not document.masks


def below_norms(width: int, height: int, fps: float, narrow_field: bool) -> bool:
    min_w, min_h, min_fps = NORMS[narrow_field]
    return width * height < min_w * min_h or fps < min_fps


@dataclass(frozen=True)
class NormsVerdict:
    below: bool
    width: int
    height: int
    fps: float
    narrow_field: bool

    @property
    def detail(self) -> str | None:
        """What the console, `vigie status` and the record of processing show; None: within."""
        if not self.below:
            return None
        min_w, min_h, min_fps = NORMS[self.narrow_field]
        return (f"{self.width}x{self.height} at {self.fps:.1f} fps, below {min_w}x{min_h} at "
                f"{min_fps:g} fps")


class NormsWatch:
    """R35, continuously: each window of `window` flowing frames is measured (resolution, frame
    rate from the capture times) against the floors; `observe` returns a verdict only when it
    changes (the first one included), so a camera turned down later is seen too. A gap (masking
    blocked, or frames over 2 s apart: a reconnection) restarts the window: a camera that sends
    nothing for a while is not a low frame rate."""

    GAP_NS = 2_000_000_000  # frames further apart: an interruption (the floor is 1 per 0.17 s)

    def __init__(self, window: int) -> None:
        self.window = window
        self.below: bool | None = None  # as last told
        self._start: tuple[int, int] | None = None  # (capture_time_ns, frames since)
        self._last_ns = 0

    def interrupt(self) -> None:
        self._start = None

    def forget(self) -> None:
        """The last verdict was not stored: tell the next one whatever it is."""
        self.below = None

    def observe(self, width: int, height: int, capture_time_ns: int,
                narrow_field: bool) -> NormsVerdict | None:
        gap = capture_time_ns - self._last_ns > self.GAP_NS
        self._last_ns = capture_time_ns
        if self._start is None or gap:
            self._start = (capture_time_ns, 0)
            return None
        start, count = self._start
        count += 1
        if count < self.window:
            self._start = (start, count)
            return None
        self._start = (capture_time_ns, 0)
        fps = count / max(1e-9, (capture_time_ns - start) / 1e9)
        below = below_norms(width, height, fps, narrow_field)
        if below == self.below:
            return None
        self.below = below
        return NormsVerdict(below, width, height, round(fps, 2), narrow_field)


def snapshot_jpeg(raw: Frame, quality: int = 85) -> bytes:
    """Decode one RAW keyframe in memory and return it as JPEG (the commissioning snapshot)."""
    decoder = av.CodecContext.create(raw.codec, "r")
    if raw.parameter_sets:
        decoder.extradata = raw.parameter_sets
    packet = av.Packet(raw.data)
    pictures = list(decoder.decode(packet)) + list(decoder.decode(None))
    if not pictures:
        raise ValueError("the keyframe did not decode")
    bgr = pictures[0].to_ndarray(format="bgr24")
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(jpeg)

"""libx264 settings shared by the masking service, `vigie mask-file` and the benchmark."""

from __future__ import annotations

from fractions import Fraction

import av
from pydantic import BaseModel, ConfigDict, Field


class EncoderOptions(BaseModel):
    """Per-camera encoder settings (cameras.encoder in the database overrides the defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str = Field(default="veryfast", pattern=r"^(ultrafast|superfast|veryfast|faster|fast|medium)$")
    tune: str | None = Field(default="zerolatency", description="zerolatency: no B-frames, no lookahead")
    crf: int = Field(default=23, ge=0, le=51)
    max_bitrate_kbps: int | None = Field(default=None, ge=100, le=50_000)
    gop: int | None = Field(
        default=None, ge=1, le=1000,
        description="Keyframe interval in frames; None follows the source's keyframes")
    threads: int = Field(default=1, ge=0, le=16, description="0 lets x264 choose")

    def codec_options(self) -> dict[str, str]:
        # scenecut=0 when following the source: keyframes only where the source has them (and at
        # a mask change), so that segments cut where the camera's GOPs do.
        params = ["scenecut=0"] if self.gop is None else []
        options = {"preset": self.preset, "crf": str(self.crf)}
        if self.tune:
            options["tune"] = self.tune
        if self.max_bitrate_kbps:
            options["maxrate"] = f"{self.max_bitrate_kbps}k"
            options["bufsize"] = f"{2 * self.max_bitrate_kbps}k"
        if params:
            options["x264-params"] = ":".join(params)
        return options


def configure(ctx: av.video.codeccontext.VideoCodecContext, options: EncoderOptions, *, width: int,
              height: int, time_base: Fraction, fps: float | None) -> None:
    """Set up an (unopened) libx264 context; keyframes are forced per frame by the caller."""
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = time_base
    if fps:
        ctx.framerate = Fraction(fps).limit_denominator(1001)
    ctx.gop_size = options.gop or 100_000
    ctx.thread_count = options.threads
    ctx.options = options.codec_options()


def new_encoder(options: EncoderOptions, *, width: int, height: int, time_base: Fraction,
                fps: float | None) -> av.video.codeccontext.VideoCodecContext:
    ctx = av.CodecContext.create("libx264", "w")
    configure(ctx, options, width=width, height=height, time_base=time_base, fps=fps)
    ctx.open()
    return ctx  # type: ignore[return-value]

"""Simulated cameras: GStreamer's RTSP server playing clips in a loop, or a live test pattern.

Run with Debian's /usr/bin/python3 (GStreamer's introspection bindings are not installable in a
venv); it imports nothing from Vigie. Looping follows ../shared/ENVIRONMENT.md: a segment seek to 0
when the media is prepared, and a non-flushing segment seek on SEGMENT_DONE, so that timestamps keep
increasing across loops.

    /usr/bin/python3 rtsp_camera.py --port 8554 --clip cam1=/path/a.mp4:h264 --pattern test=640x360
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

# Before the subclass below is registered: its virtual methods need Gst's types.
Gst.init(None)
SEEK_FLAGS = Gst.SeekFlags.SEGMENT


class LoopingMedia(GstRtspServer.RTSPMedia):
    def do_prepared(self):
        element = self.get_element()
        element.seek(1.0, Gst.Format.TIME, Gst.SeekFlags.FLUSH | SEEK_FLAGS,
                     Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)

    def do_handle_message(self, message):
        if message.type == Gst.MessageType.SEGMENT_DONE:
            self.get_element().seek(1.0, Gst.Format.TIME, SEEK_FLAGS,
                                    Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)
            return True
        return GstRtspServer.RTSPMedia.do_handle_message(self, message)


def clip_launch(path, codec):
    parse, pay = ("h265parse", "rtph265pay") if codec == "hevc" else ("h264parse", "rtph264pay")
    location = path.replace("\\", "\\\\").replace('"', '\\"')
    return (f'( filesrc location="{location}" ! qtdemux name=d d.video_0 ! queue ! '
            f"{parse} config-interval=-1 ! {pay} name=pay0 pt=96 )")


def pattern_launch(width, height, fps, marker):
    caps = f"video/x-raw,width={width},height={height},framerate={fps}/1,format=I420"
    src = f"videotestsrc is-live=true pattern=smpte ! {caps}"
    if marker:
        # A saturated magenta box at a known place (x, y = 1/8 of the frame, 1/4 of its size) lets
        # the masking tests prove that a private area never leaves masking unmasked.
        box = f"video/x-raw,width={width // 4},height={height // 4},framerate={fps}/1,format=I420"
        src = (f"videotestsrc is-live=true pattern=smpte ! {caps} ! mix.sink_0 "
               f"videotestsrc is-live=true pattern=solid-color foreground-color=0xffff00ff ! {box} "
               f"! mix.sink_1 compositor name=mix sink_1::xpos={width // 8} "
               f"sink_1::ypos={height // 8} ! {caps}")
    return (f"( {src} ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps * 2} "
            f"bitrate=1500 ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clip", action="append", default=[], metavar="MOUNT=PATH:CODEC",
                    help="serve PATH (MP4, codec h264 or hevc) in a loop at rtsp://host:port/MOUNT")
    ap.add_argument("--pattern", action="append", default=[], metavar="MOUNT=WxH[@FPS][+marker]",
                    help="serve a live test pattern")
    ap.add_argument("--credentials", metavar="USER:PASSWORD",
                    help="require RTSP basic authentication on every mount")
    args = ap.parse_args()

    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()

    def add(mount, launch, looping):
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)
        if looping:
            factory.set_media_gtype(LoopingMedia)
        if args.credentials:
            factory.add_role_from_structure(Gst.Structure.from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )[0])
        mounts.add_factory("/" + mount, factory)

    for spec in args.clip:
        mount, rest = spec.split("=", 1)
        path, codec = rest.rsplit(":", 1)
        add(mount, clip_launch(path, codec), looping=True)
    for spec in args.pattern:
        mount, rest = spec.split("=", 1)
        marker = rest.endswith("+marker")
        rest = rest.removesuffix("+marker")
        size, _, fps = rest.partition("@")
        width, height = (int(v) for v in size.split("x"))
        add(mount, pattern_launch(width, height, int(fps or 25), marker), looping=False)

    if args.credentials:
        user, password = args.credentials.split(":", 1)
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)

    if server.attach(None) == 0:
        print(f"rtsp_camera: cannot listen on {args.host}:{args.port}", file=sys.stderr)
        sys.exit(2)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"rtsp_camera: listening on rtsp://{args.host}:{args.port}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()

"""A tiny H.264-in-MP4 writer with no codec library: every coded macroblock is I_PCM (raw samples).

Why this works: H.264 lets any macroblock carry its samples uncompressed (``mb_type`` I_PCM), so a valid stream
needs only bit-exact headers, not an encoder. The first frame is an IDR picture of I_PCM macroblocks; each later
frame is a P picture that skips (copies) every macroblock equal to the previous frame's and sends the changed ones
as I_PCM, so a mostly still placeholder with a moving marker stays small. Constrained Baseline profile, CAVLC,
no deblocking, 4:2:0, frame cropping for sizes that are not multiples of 16. Every decoder (ffmpeg, browsers,
phones) plays it; tests decode it with PyAV.

Samples are stored in limited range (luma 16..235, chroma 16..240) as decoders assume without VUI, which also
keeps zero bytes out of the sample data: only the short headers need emulation prevention.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

# Pillow is imported by the methods that read pixels: starting a server (a test fixture) loads none of it.
if TYPE_CHECKING:
    from PIL import Image

MB = 16
TIMESCALE = 1000
_LUMA_LUT = [16 + round(v * 219 / 255) for v in range(256)]
_CHROMA_LUT = [16 + round(v * 224 / 255) for v in range(256)]
_I_PCM_IN_I_SLICE = 25
_I_PCM_IN_P_SLICE = 30  # P-slice mb_type numbering puts the intra types after the 5 inter ones
_LOG2_MAX_FRAME_NUM = 4
_EMULATION = re.compile(b"\x00\x00(?=[\x00-\x03])")


class _Bits:
    """An MSB-first bit writer for the Exp-Golomb coded header fields."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def u(self, bits: int, value: int) -> None:
        for shift in range(bits - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> shift) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                self.acc = self.n = 0

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        if self.n:
            self.u(8 - self.n, 0)

    def raw(self, data: bytes) -> None:
        """Byte-aligned payload (PCM samples) appended as is."""
        self.out += data

    def trailing(self) -> bytes:
        """rbsp_trailing_bits: a one bit, then zeros to the byte boundary."""
        self.u(1, 1)
        self.align_zero()
        return bytes(self.out)


def _tiles(plane: bytes, stride: int, side: int) -> list[bytes]:
    """A plane cut into side x side tiles, each as its rows one after another, tiles in raster order."""
    tiles: list[bytes] = []
    for top in range(0, len(plane), stride * side):
        rows = [plane[start : start + stride] for start in range(top, top + stride * side, stride)]
        pieces = [[row[left : left + side] for left in range(0, stride, side)] for row in rows]
        tiles += [b"".join(tile) for tile in zip(*pieces, strict=True)]
    return tiles


def _nal(header: int, rbsp: bytes) -> bytes:
    return bytes([header]) + _EMULATION.sub(b"\x00\x00\x03", rbsp)


def _level(mbs: int) -> int:
    # Frame-size limits of the H.264 levels (MaxFS); bit rates are ignored, as decoders do.
    for limit, level in ((396, 21), (1620, 31), (3600, 32), (8192, 40), (22080, 51)):
        if mbs <= limit:
            return level
    return 52


class _Stream:
    def __init__(self, width: int, height: int) -> None:
        if width < 2 or height < 2 or width % 2 or height % 2:
            raise ValueError(f"frame size must be even and at least 2x2, not {width}x{height}")
        self.width, self.height = width, height
        self.mbs_x, self.mbs_y = -(-width // MB), -(-height // MB)
        self.level = _level(self.mbs_x * self.mbs_y)

    def sps(self) -> bytes:
        b = _Bits()
        b.u(8, 66)  # Baseline
        b.u(8, 0xC0)  # constraint_set0 + constraint_set1: Constrained Baseline
        b.u(8, self.level)
        b.ue(0)  # seq_parameter_set_id
        b.ue(_LOG2_MAX_FRAME_NUM - 4)
        b.ue(2)  # pic_order_cnt_type 2: output order = decoding order, no fields to send
        b.ue(1)  # max_num_ref_frames
        b.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
        b.ue(self.mbs_x - 1)
        b.ue(self.mbs_y - 1)
        b.u(1, 1)  # frame_mbs_only_flag
        b.u(1, 1)  # direct_8x8_inference_flag
        crop_right, crop_bottom = (self.mbs_x * MB - self.width) // 2, (self.mbs_y * MB - self.height) // 2
        if crop_right or crop_bottom:
            b.u(1, 1)
            for offset in (0, crop_right, 0, crop_bottom):  # left, right, top, bottom in 2-pixel units
                b.ue(offset)
        else:
            b.u(1, 0)
        b.u(1, 0)  # vui_parameters_present_flag
        return _nal(0x67, b.trailing())

    @staticmethod
    def pps() -> bytes:
        b = _Bits()
        b.ue(0)  # pic_parameter_set_id
        b.ue(0)  # seq_parameter_set_id
        b.u(1, 0)  # entropy_coding_mode_flag: CAVLC
        b.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
        b.ue(0)  # num_slice_groups_minus1
        b.ue(0)  # num_ref_idx_l0_default_active_minus1
        b.ue(0)  # num_ref_idx_l1_default_active_minus1
        b.u(1, 0)  # weighted_pred_flag
        b.u(2, 0)  # weighted_bipred_idc
        b.se(0)  # pic_init_qp_minus26
        b.se(0)  # pic_init_qs_minus26
        b.se(0)  # chroma_qp_index_offset
        b.u(1, 1)  # deblocking_filter_control_present_flag (to switch deblocking off per slice)
        b.u(1, 0)  # constrained_intra_pred_flag
        b.u(1, 0)  # redundant_pic_cnt_present_flag
        return _nal(0x68, b.trailing())

    def macroblocks(self, picture: Image.Image) -> list[bytes]:
        """Each macroblock's PCM payload (256 luma, 64 Cb, 64 Cr limited-range samples) in raster order, for a
        picture whose sides are whole macroblocks."""
        from PIL import Image

        width = picture.width
        y, cb, cr = picture.convert("RGB").convert("YCbCr").split()
        half = (width // 2, picture.height // 2)
        luma = _tiles(y.point(_LUMA_LUT).tobytes(), width, MB)
        blue = _tiles(cb.resize(half, Image.Resampling.BOX).point(_CHROMA_LUT).tobytes(), width // 2, 8)
        red = _tiles(cr.resize(half, Image.Resampling.BOX).point(_CHROMA_LUT).tobytes(), width // 2, 8)
        return [b"".join(parts) for parts in zip(luma, blue, red, strict=True)]

    def padded(self, frame: Image.Image) -> Image.Image:
        if frame.size != (self.width, self.height):
            raise ValueError(f"frame is {frame.width}x{frame.height}, stream is {self.width}x{self.height}")
        # crop() beyond the edge fills with black, as every changed region below is cut the same way.
        return frame.convert("RGB").crop((0, 0, self.mbs_x * MB, self.mbs_y * MB))

    def changes(self, before: Image.Image, after: Image.Image, current: list[bytes]) -> dict[int, bytes]:
        """The macroblocks of ``after`` that differ from ``current``, found inside the box where the pictures
        differ at all (so a mostly still frame costs a few macroblocks, not a whole-frame conversion)."""
        from PIL import ImageChops

        box = ImageChops.difference(before, after).getbbox()
        if box is None:
            return {}
        left, top = box[0] // MB, box[1] // MB
        right, bottom = -(-box[2] // MB), -(-box[3] // MB)
        blocks = self.macroblocks(after.crop((left * MB, top * MB, right * MB, bottom * MB)))
        changed: dict[int, bytes] = {}
        columns = right - left
        for number, block in enumerate(blocks):
            index = (top + number // columns) * self.mbs_x + left + number % columns
            if current[index] != block:
                changed[index] = block
        return changed

    def idr(self, blocks: Sequence[bytes], idr_pic_id: int = 0) -> bytes:
        b = _Bits()
        b.ue(0)  # first_mb_in_slice
        b.ue(7)  # slice_type: I (and every slice of the picture is I)
        b.ue(0)  # pic_parameter_set_id
        b.u(_LOG2_MAX_FRAME_NUM, 0)  # frame_num
        b.ue(idr_pic_id)
        b.u(1, 0)  # no_output_of_prior_pics_flag
        b.u(1, 0)  # long_term_reference_flag
        b.se(0)  # slice_qp_delta
        b.ue(1)  # disable_deblocking_filter_idc: off
        for block in blocks:
            b.ue(_I_PCM_IN_I_SLICE)
            b.align_zero()  # pcm_alignment_zero_bit
            b.raw(block)
        return _nal(0x65, b.trailing())

    def p_frame(self, frame_num: int, changed: dict[int, bytes]) -> bytes:
        b = _Bits()
        b.ue(0)  # first_mb_in_slice
        b.ue(5)  # slice_type: P (every slice)
        b.ue(0)  # pic_parameter_set_id
        b.u(_LOG2_MAX_FRAME_NUM, frame_num % (1 << _LOG2_MAX_FRAME_NUM))
        b.u(1, 0)  # num_ref_idx_active_override_flag
        b.u(1, 0)  # ref_pic_list_modification_flag_l0
        b.u(1, 0)  # adaptive_ref_pic_marking_mode_flag: sliding window
        b.se(0)  # slice_qp_delta
        b.ue(1)  # disable_deblocking_filter_idc: off
        # Every macroblock not sent is P_Skip: its neighbours are intra or zero-motion skips, so the predicted
        # motion is zero and it is copied from the previous frame as it is.
        position = 0
        for index in sorted(changed):
            b.ue(index - position)  # mb_skip_run
            b.ue(_I_PCM_IN_P_SLICE)
            b.align_zero()  # pcm_alignment_zero_bit
            b.raw(changed[index])
            position = index + 1
        if position < self.mbs_x * self.mbs_y:
            b.ue(self.mbs_x * self.mbs_y - position)
        return _nal(0x41, b.trailing())


def encode_h264(frames: Sequence[Image.Image]) -> tuple[bytes, bytes, list[bytes]]:
    """(SPS, PPS, one access unit per frame) for frames of one even size."""
    if not frames:
        raise ValueError("a video needs at least one frame")
    stream = _Stream(*frames[0].size)
    previous = stream.padded(frames[0])
    current = stream.macroblocks(previous)
    samples = [stream.idr(current)]
    for number, frame in enumerate(frames[1:], start=1):
        picture = stream.padded(frame)
        changed = stream.changes(previous, picture, current)
        samples.append(stream.p_frame(number, changed))
        for index, block in changed.items():
            current[index] = block
        previous = picture
    return stream.sps(), stream.pps(), samples


# --- MP4 (ISO BMFF) ------------------------------------------------------------------------------------------


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def mp4(frames: Sequence[Image.Image], fps: int) -> bytes:
    """An MP4 file (``isom``/``avc1``) playing ``frames`` at ``fps`` frames per second."""
    if fps < 1:
        raise ValueError("fps must be at least 1")
    sps, pps, units = encode_h264(frames)
    width, height = frames[0].size
    samples = [struct.pack(">I", len(unit)) + unit for unit in units]  # 4-byte length prefixes (avcC says so)
    delta = TIMESCALE // fps
    duration = delta * len(samples)

    def moov(chunk_offset: int) -> bytes:
        avcc = _box(
            b"avcC",
            bytes([1, 66, 0xC0, sps[3], 0xFF, 0xE1]),
            struct.pack(">H", len(sps)),
            sps,
            b"\x01",
            struct.pack(">H", len(pps)),
            pps,
        )
        avc1 = _box(
            b"avc1",
            b"\x00" * 6,
            struct.pack(">H", 1),
            b"\x00" * 16,
            struct.pack(">HH", width, height),
            struct.pack(">II", 0x00480000, 0x00480000),
            b"\x00" * 4,
            struct.pack(">H", 1),
            b"\x00" * 32,
            struct.pack(">Hh", 0x18, -1),
            avcc,
        )
        stbl = _box(
            b"stbl",
            _full(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
            _full(b"stts", 0, 0, struct.pack(">III", 1, len(samples), delta)),
            _full(b"stss", 0, 0, struct.pack(">II", 1, 1)),  # only the first frame is a sync sample
            _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(samples), 1)),  # one chunk holds every sample
            _full(b"stsz", 0, 0, struct.pack(">II", 0, len(samples)), *(struct.pack(">I", len(s)) for s in samples)),
            _full(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)),
        )
        minf = _box(
            b"minf",
            _full(b"vmhd", 0, 1, b"\x00" * 8),
            _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1))),
            stbl,
        )
        mdia = _box(
            b"mdia",
            _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, duration, 0x55C4, 0)),  # "und"
            _full(b"hdlr", 0, 0, b"\x00" * 4, b"vide", b"\x00" * 12, b"VideoHandler\x00"),
            minf,
        )
        tkhd = _full(
            b"tkhd",
            0,
            3,
            struct.pack(">IIIII", 0, 0, 1, 0, duration),
            b"\x00" * 8,
            struct.pack(">hhhH", 0, 0, 0, 0),
            _MATRIX,
            struct.pack(">II", width << 16, height << 16),
        )
        mvhd = _full(
            b"mvhd",
            0,
            0,
            struct.pack(">IIII", 0, 0, TIMESCALE, duration),
            struct.pack(">IH", 0x10000, 0x100),
            b"\x00" * 10,
            _MATRIX,
            b"\x00" * 24,
            struct.pack(">I", 2),
        )
        return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))

    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"avc1", b"mp41")
    header = len(ftyp) + len(moov(0)) + 8  # the offset's value does not change moov's size
    return ftyp + moov(header) + _box(b"mdat", *samples)
